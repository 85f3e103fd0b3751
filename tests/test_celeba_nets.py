"""rvae.celeba_nets: the AVAE appendix F CelebA ConvNets (and their narrow CPU stand-in) have the stated sizes."""
import pytest
import torch
from torch import nn

from rvae.nets import build_vae


def layers(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


def test_the_appendix_convnets_have_the_stated_layers_and_shapes_at_64x64():
    from rvae.celeba_nets import CelebAConvDecoder, CelebAConvEncoder
    encoder, decoder = CelebAConvEncoder((3, 64, 64), 32), CelebAConvDecoder((3, 64, 64), 32)
    convolutions = layers(encoder, nn.Conv2d)
    assert [m.out_channels for m in convolutions] == [128, 256, 512, 1024]
    assert {(m.kernel_size, m.stride) for m in convolutions} == {((5, 5), (2, 2))}
    assert len(layers(encoder, nn.BatchNorm2d)) == 4
    assert encoder.feature_shape == (1024, 4, 4) and layers(encoder, nn.Linear)[0].in_features == 1024 * 4 * 4
    transposed = layers(decoder, nn.ConvTranspose2d)
    assert [m.out_channels for m in transposed] == [512, 256, 128, 3]
    assert {(m.kernel_size, m.stride) for m in transposed} == {((5, 5), (2, 2))}
    assert decoder.start_shape == (1024, 4, 4)
    encoder.eval(), decoder.eval()
    mu, logvar = encoder(torch.rand(2, 3, 64, 64))
    assert mu.shape == logvar.shape == (2, 32)
    images = decoder(torch.randn(2, 32))
    assert images.shape == (2, 3, 64, 64) and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("size", [64, 32])
def test_the_narrow_convnets_are_registered_with_every_width_divided_by_eight(size):
    import rvae.celeba_nets  # noqa: F401  (registers the architectures)
    model = build_vae("celeba_conv_narrow", (3, size, size), latent_dim=8)
    assert [m.out_channels for m in layers(model.encoder, nn.Conv2d)] == [16, 32, 64, 128]
    assert [m.out_channels for m in layers(model.decoder, nn.ConvTranspose2d)] == [64, 32, 16, 3]
    model.eval()
    with torch.no_grad():
        assert model.decode(model.encode(torch.rand(3, 3, size, size))[0]).shape == (3, 3, size, size)


def test_every_layer_halves_or_doubles_the_image_exactly():
    from rvae.celeba_nets import CelebAConvDecoder, CelebAConvEncoder
    encoder, decoder = CelebAConvEncoder((3, 48, 80), 4, (8, 8, 8, 8)), CelebAConvDecoder((3, 48, 80), 4, (8, 8, 8), 8)
    sizes, x = [], torch.rand(1, 3, 48, 80)
    encoder.eval()
    for module in encoder.body:
        x = module(x)
        if isinstance(module, nn.Conv2d):
            sizes.append(tuple(x.shape[2:]))
    assert sizes == [(24, 40), (12, 20), (6, 10), (3, 5)]
    decoder.eval()
    assert decoder(torch.randn(1, 4)).shape == (1, 3, 48, 80)


def test_image_sizes_the_convnets_cannot_take_are_refused():
    from rvae.celeba_nets import CelebAConvDecoder, CelebAConvEncoder
    with pytest.raises(ValueError, match="divisible by 16, not 40x40"):
        CelebAConvEncoder((3, 40, 40), 8)
    with pytest.raises(ValueError, match="divisible by 16, not 64x72"):
        CelebAConvDecoder((3, 64, 72), 8)


@pytest.mark.parametrize("profile", ["quick", "full", "paper"])
def test_the_celeba_chapter_s_profiles_name_a_network_that_fits_their_image_size(profile):
    """The network and image size each profile of chapter 9 uses (read from the notebook) build, and map
    faces of that size to codes and back."""
    import rvae.celeba_nets  # noqa: F401
    from rvae.book.chapters import get_chapter
    chapter = get_chapter("09_celeba")
    values = {name: p.default for name, p in chapter.parameters.items()}
    values.update(chapter.profiles.get(profile, {}))
    size, architecture, latent = values["image_size"], values["architecture"], values["latent_dim"]
    assert size % 16 == 0 and architecture in {"celeba_conv", "celeba_conv_narrow"}
    model = build_vae(architecture, (3, size, size), latent_dim=latent).eval()
    with torch.no_grad():
        mu, logvar = model.encode(torch.rand(2, 3, size, size))
        assert mu.shape == logvar.shape == (2, latent)
        assert model.decode(mu).shape == (2, 3, size, size)
    assert (profile == "paper") == (architecture == "celeba_conv" and size == 64)

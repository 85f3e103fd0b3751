"""The book machinery: how chapters are found, run, filed and rendered.

``chapters`` (registry: parameters cell, valid values, profiles), ``runner`` (papermill execution,
provenance banner), ``results`` (claims and result files), ``provenance`` (revision, versions,
source hashes), ``status`` (the reproduction-status page), ``checked_outputs`` (nbval-checked
outputs of source notebooks), ``build`` (the HTML book), ``cli`` (the ``rvae`` command).
"""

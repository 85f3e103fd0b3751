// Click a column's head to sort a table of class "rvae-sortable" (the "Methods side by side" page).
// Cells with a data-sort attribute sort by that number; the others by their text. Click again: reverse.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.rvae-sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (head, column) {
      head.style.cursor = "pointer";
      head.title = "sort by this column";
      head.addEventListener("click", function () {
        var body = table.tBodies[0];
        var descending = head.dataset.order !== "descending";
        head.dataset.order = descending ? "descending" : "ascending";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column], y = b.cells[column];
          var nx = x.dataset.sort, ny = y.dataset.sort, order;
          if (nx !== undefined && ny !== undefined) { order = parseFloat(nx) - parseFloat(ny); }
          else if (nx !== undefined) { order = 1; }      // measured values above dashes when descending
          else if (ny !== undefined) { order = -1; }
          else { order = x.textContent.localeCompare(y.textContent); }
          return descending ? -order : order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
});

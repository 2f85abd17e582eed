// swampd results page: filter and sort the findings table in place.
// The page is complete without this file; nothing here fetches anything.
"use strict";
(function () {
  var table = document.getElementById("findings-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
  var filter = document.getElementById("filter");
  var severity = document.getElementById("severity");
  var shownCount = document.getElementById("shown-count");

  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var wanted = severity.value;
    var shown = 0;
    rows.forEach(function (row, i) {
      var ok = (!wanted || row.getAttribute("data-severity") === wanted) &&
        words.every(function (w) { return texts[i].indexOf(w) !== -1; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    shownCount.textContent = shown + " of " + rows.length + " shown";
  }

  filter.addEventListener("input", apply);
  severity.addEventListener("change", apply);
  Array.prototype.forEach.call(document.querySelectorAll("button.pick"), function (button) {
    button.addEventListener("click", function () {
      severity.value = button.getAttribute("data-severity");
      apply();
      table.scrollIntoView();
    });
  });

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function cellValue(row, index, numeric) {
    var text = row.cells[index].textContent.trim();
    if (!numeric) { return text.toLowerCase(); }
    var n = parseFloat(text);
    return isNaN(n) ? Infinity : n;
  }
  headers.forEach(function (th, index) {
    th.tabIndex = 0;
    function sort() {
      var numeric = th.getAttribute("data-type") === "num";
      var descending = th.getAttribute("aria-sort") === "ascending";
      var keyed = rows.map(function (row, i) { return [cellValue(row, index, numeric), i, row]; });
      keyed.sort(function (a, b) {
        if (a[0] < b[0]) { return descending ? 1 : -1; }
        if (a[0] > b[0]) { return descending ? -1 : 1; }
        return a[1] - b[1];
      });
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var fragment = document.createDocumentFragment();
      keyed.forEach(function (item) { fragment.appendChild(item[2]); });
      body.appendChild(fragment);
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
  apply();
}());

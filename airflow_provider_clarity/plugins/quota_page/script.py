"""The page's one inline script: open a caller's task instance in the UI around the page."""

from __future__ import annotations

# The UI shows external views in an iframe sandboxed without allow-top-navigation (3.3.2),
# so a target="_top" link does nothing there. The frame is same-origin, so the link instead
# tells the UI's router to show the page, as its own links do. Opened on its own (no parent
# UI), the link is an ordinary one.
OPEN_IN_UI = """
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a[data-ui-link]");
  if (!link || window.parent === window) return;
  try {
    window.parent.history.pushState({}, "", link.getAttribute("href"));
    window.parent.dispatchEvent(new PopStateEvent("popstate"));
    event.preventDefault();
  } catch (err) { /* not the UI around us: let the link navigate */ }
});
"""

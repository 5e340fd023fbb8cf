// Small DOM helpers shared by the web form (report.js) and the review desk (review.js).
"use strict";

window.TrueframeDom = Object.freeze({
  // An element with optional text (set as text, never as HTML) and class.
  el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  },
  // Remove every child of a node and return it.
  clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  },
});

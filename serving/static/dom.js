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
  // A probability in words that never reads as certainty: "under 1%" and "over 99%" at the ends
  // (the rule of the report's own sentences, detector/scoring/fusion/text.py: percent).
  chance(p) {
    const v = 100 * p;
    if (v < 0.5) return "under 1%";
    if (v >= 99.5) return "over 99%";
    return Math.round(v) + "%";
  },
  // A probability's range in chance()'s words: "18% to 47%" (range_words in text.py).
  span(range) {
    const [low, high] = [window.TrueframeDom.chance(range[0]), window.TrueframeDom.chance(range[1])];
    return low === high ? low : low + " to " + high;
  },
});

// The console's progressive enhancement: everything works as plain forms; this adds keyboard review,
// copy buttons and readable errors for script requests. No third-party code, no inline scripts.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function showProblem(problem) {
  // the service's problem+json in words, in the page's alert region
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = (problem && (problem.detail || problem.title)) || "Something went wrong; try again.";
  live.hidden = false;
}
window.consoleShowProblem = showProblem;
window.consoleCsrf = csrf;

function setupCopy() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.querySelector(button.dataset.copy);
      field.select();
      try { await navigator.clipboard.writeText(field.value); } catch { document.execCommand("copy"); }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
}

function setupReviewKeys() {
  // J/K move through the queue, A approves and R rejects the current video, X selects it for bulk actions
  const items = [...document.querySelectorAll(".queue > .review")];
  if (!items.length) return;
  let index = 0;
  const focus = (i) => {
    index = Math.max(0, Math.min(items.length - 1, i));
    items.forEach((item, n) => item.classList.toggle("current", n === index));
    items[index].focus();
    play(items[index]);
  };
  const play = (current) => {
    // the current video plays (muted, as a phone would start it); the others wait
    for (const video of document.querySelectorAll(".queue video")) {
      if (video.closest(".review") === current) video.play().catch(() => {});
      else video.pause();
    }
  };
  items.forEach((item, n) => item.addEventListener("focusin", () => {
    if (index === n && item.classList.contains("current")) return;
    index = n;
    items.forEach((it, m) => it.classList.toggle("current", m === n));
    play(item);
  }));
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName) && event.target.type !== "checkbox") return;
    const key = event.key.toLowerCase();
    const item = items[index];
    if (key === "j") { event.preventDefault(); focus(index + 1); }
    else if (key === "k") { event.preventDefault(); focus(index - 1); }
    else if (key === "x") { event.preventDefault(); const box = item.querySelector('input[type="checkbox"]'); box.checked = !box.checked; }
    else if (key === "a" || key === "r") {
      const button = item.querySelector(`button[data-key="${key}"]`);
      if (button) { event.preventDefault(); button.click(); }
    }
  });
  focus(0);
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopy();
  setupReviewKeys();
});

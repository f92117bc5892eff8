// Click on the flat panorama to choose where a hotspot goes: the click becomes the angles the widget uses
// (yaw across, pitch up, in degrees from the image centre), written into the form's number fields.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const pick = document.getElementById("pano-pick");
  const form = document.getElementById("hotspot-form");
  if (!pick || !form) return;
  const hfov = Number(pick.dataset.hfov), vfov = Number(pick.dataset.vfov), pitch0 = Number(pick.dataset.pitch);
  const pin = document.getElementById("new-pin");
  pick.addEventListener("click", (event) => {
    const box = pick.querySelector("img").getBoundingClientRect();
    const u = (event.clientX - box.left) / box.width, v = (event.clientY - box.top) / box.height;
    if (u < 0 || u > 1 || v < 0 || v > 1) return;
    form.elements.yaw.value = ((u - 0.5) * hfov).toFixed(1);
    form.elements.pitch.value = (pitch0 + (0.5 - v) * vfov).toFixed(1);
    pin.hidden = false;
    pin.style.left = `${u * 100}%`;
    pin.style.top = `${v * 100}%`;
    form.elements.label.focus();
  });
});

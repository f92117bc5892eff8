// Drag-and-drop uploads with tus (tus-js-client, vendored): one progress bar per file; a dropped connection
// is retried from the last byte the server kept. The page asks the console for a short-lived upload
// credential (it names this signed-in session) and sends it as a bearer token to /v1/uploads.
"use strict";

(function () {
  const section = document.querySelector("section.upload");
  if (!section || !window.tus) return;
  const list = document.getElementById("uploads");
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  let credential = null;

  async function getCredential() {
    if (credential && credential.expires_at * 1000 > Date.now() + 60000) return credential;
    const response = await fetch(section.dataset.credentialUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": window.consoleCsrf(), Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw body;
    credential = body;
    return body;
  }

  function row(file) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = "waiting";
    li.append(name, bar, status);
    list.append(li);
    return { li, bar, status };
  }

  function problemOf(error) {
    try {
      const body = error.originalResponse && error.originalResponse.getBody();
      const problem = body && JSON.parse(body);
      if (problem && problem.detail) return problem.detail;
    } catch { /* not JSON */ }
    return (error && error.message) || "the upload failed";
  }

  async function start(file) {
    const view = row(file);
    const max = Number(section.dataset.maxBytes || 0);
    if (max && file.size > max) { view.status.textContent = "too big for this shop's limit"; view.li.dataset.state = "failed"; return; }
    let auth;
    try { auth = await getCredential(); } catch (problem) {
      view.status.textContent = (problem && problem.detail) || "could not start"; view.li.dataset.state = "failed"; return;
    }
    const upload = new window.tus.Upload(file, {
      endpoint: auth.endpoint,
      retryDelays: [0, 500, 1000, 2000, 3000, 5000, 10000, 20000],
      chunkSize: 256 * 1024,
      metadata: { filename: file.name, filetype: file.type },
      removeFingerprintOnSuccess: true,
      onBeforeRequest: async (req) => {
        const fresh = await getCredential();
        req.setHeader("Authorization", `Bearer ${fresh.credential}`);
      },
      onProgress: (sent, total) => {
        const percent = total ? Math.floor((sent / total) * 100) : 0;
        view.bar.value = percent;
        view.status.textContent = `${percent} %`;
      },
      onShouldRetry: (error, attempt) => {
        const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        if (!status || status === 409 || status === 423 || status >= 500) {
          view.status.textContent = "connection lost, resuming…";
          view.li.dataset.resumed = String(attempt + 1);
          return true;
        }
        return false;
      },
      onError: (error) => {
        view.status.textContent = problemOf(error);
        view.li.dataset.state = "failed";
      },
      onSuccess: async () => {
        view.bar.value = 100;
        view.status.textContent = "checking…";
        const fresh = await getCredential();
        const answer = await fetch(upload.url, { headers: { Authorization: `Bearer ${fresh.credential}`, Accept: "application/json" } });
        const body = await answer.json();
        if (body.asset_id) {
          view.status.textContent = "done";
          view.li.dataset.state = "done";
          view.li.dataset.assetId = body.asset_id;
        } else {
          view.status.textContent = (body.error && body.error.detail) || "refused";
          view.li.dataset.state = "failed";
        }
      },
    });
    const previous = await upload.findPreviousUploads();
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  }

  function take(files) { for (const file of files) start(file); }
  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => { event.preventDefault(); zone.classList.remove("over"); take(event.dataTransfer.files); });
})();

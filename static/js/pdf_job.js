/* The PDF job page (templates/exports/pdfjob_detail.html): poll the job's status every 1.5 s
   and update the card in place (no page reload). A static file, not an inline script: the
   Content-Security-Policy allows scripts from this origin only. */
(function () {
  "use strict";
  const card = document.getElementById("job");
  if (!card) return;
  const statusEl = card.querySelector("[data-testid=job-status]");
  const progressEl = card.querySelector("[data-testid=job-progress]");
  const bar = card.querySelector(".progress-bar");
  const errorEl = card.querySelector("[data-testid=job-error]");
  const noticeEl = card.querySelector("[data-testid=job-notice]");
  const link = card.querySelector("[data-testid=job-download]");
  // The server's first width: set through the CSSOM, which style-src does not restrict.
  if (bar) bar.style.width = (bar.dataset.width || "5") + "%";
  function show(s) {
    statusEl.textContent = s.status_label;
    progressEl.textContent = s.total ? s.done + " of " + s.total + " patients" : "";
    if (bar) bar.style.width = (s.status === "done" ? 100 : s.total ? Math.round(100 * s.done / s.total) : 5) + "%";
    errorEl.textContent = s.error;
    errorEl.classList.toggle("d-none", !s.error);
    noticeEl.textContent = s.notice;
    noticeEl.classList.toggle("d-none", !s.notice);
    if (s.download_url) { link.href = s.download_url; link.textContent = "Download " + s.filename; link.classList.remove("d-none"); }
  }
  function poll() {
    fetch(card.dataset.statusUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (s) { show(s); if (s.status === "queued" || s.status === "running") setTimeout(poll, 1500); })
      .catch(function () { setTimeout(poll, 5000); });
  }
  if (card.dataset.status === "queued" || card.dataset.status === "running") setTimeout(poll, 1000);
})();

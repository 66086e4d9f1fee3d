// Kith's few lines of progressive enhancement: the live channel (an incoming call's card, a
// timeline refreshed when something arrives), a timeline's older entries added in place and an
// import's progress. Every page works without them.
"use strict";

function refreshTimeline(contactId) {
  const section = document.getElementById("timeline-section");
  const heading = document.querySelector("[data-contact]");
  if (!section || !heading || heading.dataset.contact !== contactId) return;
  fetch(section.dataset.refresh, { credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : null))
    .then((html) => {
      if (html === null) return;
      const body = document.getElementById("timeline-body");
      const parsed = new DOMParser().parseFromString(html, "text/html");
      const list = parsed.getElementById("timeline-list");
      const older = parsed.getElementById("timeline-older");
      if (list) body.replaceChildren(...[list, older].filter(Boolean));
    });
}

// "Older" is a link to the card further back; with scripts the entries are added below.
function olderEntries(event) {
  const link = event.target.closest("[data-more]");
  if (!link) return;
  event.preventDefault();
  fetch(link.dataset.more, { credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : null))
    .then((html) => {
      if (html === null) {
        window.location.href = link.href;
        return;
      }
      const parsed = new DOMParser().parseFromString(html, "text/html");
      const list = document.getElementById("timeline-list");
      for (const entry of parsed.querySelectorAll("#timeline-list > li.entry")) list.append(entry);
      const older = parsed.getElementById("timeline-older");
      const current = document.getElementById("timeline-older");
      if (older) current.replaceWith(older);
      else current.remove();
      const next = document.getElementById("timeline-older");
      if (next) next.querySelector("a").focus();
    });
}

function showCall(data) {
  const box = document.getElementById("call");
  const link = document.getElementById("call-link");
  const fresh = document.getElementById("call-new");
  document.getElementById("call-text").textContent = box.dataset.title || "";
  if (data.contact_id && !data.new_lead) {
    link.href = "/contacts/" + data.contact_id;
    link.hidden = false;
    fresh.hidden = true;
  } else {
    link.href = "/contacts/new";
    link.hidden = false;
    fresh.hidden = false;
  }
  box.hidden = false;
  link.focus();
}

function startLive() {
  const source = document.body.dataset.live;
  if (!source || !window.EventSource) return;
  const events = new EventSource(source);
  events.addEventListener("call", (event) => showCall(JSON.parse(event.data)));
  events.addEventListener("timeline", (event) => refreshTimeline(JSON.parse(event.data).contact_id));
  events.addEventListener("open", () => document.body.setAttribute("data-live-open", "yes"));
  const close = document.getElementById("call-close");
  if (close) close.addEventListener("click", () => { document.getElementById("call").hidden = true; });
}

function followImport() {
  const box = document.getElementById("import");
  if (!box) return;
  const tick = () => {
    fetch(box.dataset.progress, { credentials: "same-origin" })
      .then((response) => response.json())
      .then((job) => {
        document.getElementById("import-bar").value = job.progress;
        for (const label of box.querySelectorAll("[data-state-label]")) {
          label.hidden = label.dataset.stateLabel !== job.state;
        }
        for (const cell of box.querySelectorAll("[data-count]")) {
          cell.textContent = job[cell.dataset.count];
        }
        box.dataset.state = job.state;
        if (job.state === "pending" || job.state === "running") setTimeout(tick, 500);
      })
      .catch(() => setTimeout(tick, 2000));
  };
  if (box.dataset.state === "pending" || box.dataset.state === "running") tick();
}

document.addEventListener("DOMContentLoaded", () => {
  startLive();
  const timeline = document.getElementById("timeline-body");
  if (timeline) timeline.addEventListener("click", olderEntries);
  followImport();
});

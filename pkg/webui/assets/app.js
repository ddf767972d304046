// Solo's web view: the live parts of the server-rendered pages. Every
// fragment of HTML it inserts comes from the server's templates (escaped
// there); everything else it shows goes through textContent.
"use strict";

(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const head = Number(body.dataset.head || 0);
  const liveBadge = document.getElementById("live");

  // stream opens the live event stream (Server-Sent Events) from position
  // from, with the API's filters; the browser reconnects by itself and
  // resumes after the last event it saw.
  function stream(from, filters, onEvent) {
    const q = new URLSearchParams(filters);
    q.set("from", String(from));
    const es = new EventSource("/ui/api/events?" + q.toString());
    es.onopen = () => { liveBadge.textContent = "live"; liveBadge.className = "live on"; };
    es.onerror = () => { liveBadge.textContent = "reconnecting"; liveBadge.className = "live"; };
    // The API names each SSE event by its type (the page lists them in
    // data-types): listen to every name.
    const dispatch = (m) => onEvent(JSON.parse(m.data));
    es.onmessage = dispatch;
    (body.dataset.types || "").split(" ").forEach((t) => { if (t) es.addEventListener(t, dispatch); });
    return es;
  }

  function fmtDuration(ms) {
    if (ms < 0) ms = 0;
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); if (d >= 2) return d + "d";
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (h > 0) return h + "h" + m + "m";
    if (m > 0) return m + "m" + s + "s";
    return s + "s";
  }

  // eventItem is one line of an event list.
  function eventItem(ev) {
    const li = document.createElement("li");
    li.dataset.type = ev.type;
    li.dataset.service = ev.subject || "";
    const t = document.createElement("time");
    t.textContent = (ev.time || "").replace("T", " ").replace(/\.\d+Z$/, "Z");
    const ty = document.createElement("span");
    ty.className = "type";
    ty.textContent = ev.type;
    const who = document.createElement("span");
    who.className = "subject";
    who.textContent = ev.subject ? (ev.tenant + "/" + ev.subject) : "";
    const data = document.createElement("code");
    data.textContent = ev.data ? JSON.stringify(ev.data) : "";
    li.append(t, " ", ty, " ", who, " ", data);
    return li;
  }

  function pushEvent(list, ev, keep) {
    list.prepend(eventItem(ev));
    while (list.children.length > keep) list.lastElementChild.remove();
  }

  // fragment parses server-rendered HTML into an element.
  function fragment(html, wrapper) {
    const t = document.createElement("template");
    t.innerHTML = wrapper ? "<table><tbody>" + html + "</tbody></table>" : html;
    return wrapper ? t.content.querySelector("tr") : t.content;
  }

  // Refreshes are coalesced: an event marks what it touches; one batch
  // runs soon after a quiet spell, at most once a second in a storm.
  function coalescer(run) {
    let timer = null, last = 0, again = false;
    return function kick() {
      if (timer) { again = true; return; }
      const wait = Math.max(50, last + 1000 - Date.now());
      timer = setTimeout(async () => {
        last = Date.now();
        again = false;
        try { await run(); } finally {
          timer = null;
          if (again) kick();
        }
      }, wait);
    };
  }

  function tickUptimes(root) {
    const now = Date.now();
    root.querySelectorAll("[data-started]").forEach((el) => {
      const cell = el.querySelector(".uptime");
      if (!cell) return;
      cell.textContent = el.dataset.started ? fmtDuration(now - Number(el.dataset.started)) : "";
    });
  }

  // --- the services page ---------------------------------------------
  function servicesPage(table) {
    const tbody = table.tBodies[0];
    const filter = document.getElementById("filter");
    const stateFilter = document.getElementById("state-filter");
    const count = document.getElementById("count");
    const dirty = new Set();
    const maxBatch = 20;

    function visible(tr) {
      const f = filter.value.trim().toLowerCase();
      const st = stateFilter.value;
      return (!f || tr.dataset.name.toLowerCase().includes(f)) && (!st || tr.dataset.state === st);
    }
    function applyFilter() {
      let n = 0;
      for (const tr of tbody.rows) { const v = visible(tr); tr.hidden = !v; if (v) n++; }
      count.textContent = n + " of " + tbody.rows.length;
    }
    filter.addEventListener("input", applyFilter);
    stateFilter.addEventListener("change", applyFilter);

    let sortKey = "name", sortDir = 1, sortNum = false;
    function cmp(a, b) {
      const x = a.dataset[sortKey] || "", y = b.dataset[sortKey] || "";
      const r = sortNum ? (Number(x) - Number(y)) : x.localeCompare(y);
      return (r || a.dataset.key.localeCompare(b.dataset.key)) * sortDir;
    }
    table.tHead.querySelectorAll("th[data-sort]").forEach((th) => {
      th.tabIndex = 0;
      th.addEventListener("click", () => {
        const k = th.dataset.sort;
        sortDir = (sortKey === k) ? -sortDir : 1;
        sortKey = k; sortNum = th.hasAttribute("data-num");
        table.tHead.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
        const rows = Array.from(tbody.rows).sort(cmp);
        tbody.append(...rows);
      });
    });

    function rowOf(key) { return tbody.querySelector('tr[data-key="' + CSS.escape(key) + '"]'); }

    const refresh = coalescer(async () => {
      const keys = Array.from(dirty).slice(0, maxBatch);
      keys.forEach((k) => dirty.delete(k));
      await Promise.all(keys.map(async (key) => {
        const [tenant, name] = key.split("/");
        const res = await fetch("/ui/row/" + encodeURIComponent(tenant) + "/" + encodeURIComponent(name), { credentials: "same-origin" });
        const old = rowOf(key);
        if (res.status === 404) { if (old) old.remove(); return; }
        if (!res.ok) return;
        const tr = fragment(await res.text(), true);
        if (!tr) return;
        tr.hidden = !visible(tr);
        if (old) { old.replaceWith(tr); } else {
          const after = Array.from(tbody.rows).find((r) => cmp(tr, r) < 0);
          tbody.insertBefore(tr, after || null);
          const empty = document.getElementById("empty"); if (empty) empty.remove();
        }
      }));
      tickUptimes(tbody);
      applyFilter();
      if (dirty.size) refresh();
    });

    stream(head + 1, {}, (ev) => {
      if (!ev.subject || !ev.type.startsWith("service_")) return;
      dirty.add(ev.tenant + "/" + ev.subject);
      refresh();
    });
    applyFilter();
    setInterval(() => tickUptimes(tbody), 1000);
  }

  // --- one service's page ---------------------------------------------
  function servicePage(root) {
    const tenant = root.dataset.tenant, name = root.dataset.name;
    const path = encodeURIComponent(tenant) + "/" + encodeURIComponent(name);
    const live = document.getElementById("live-status");
    const events = document.getElementById("events");
    const result = document.getElementById("result");

    const refresh = coalescer(async () => {
      const res = await fetch("/ui/services/" + path + "/live", { credentials: "same-origin" });
      if (!res.ok) return;
      live.replaceChildren(fragment(await res.text(), false));
    });
    stream(head + 1, { tenant: tenant, service: name }, (ev) => {
      pushEvent(events, ev, 200);
      refresh();
    });
    setInterval(() => tickUptimes(live), 1000);

    root.querySelectorAll("button[data-verb]").forEach((b) => {
      b.addEventListener("click", async () => {
        const verb = b.dataset.verb;
        if (!window.confirm(verb + " " + tenant + "/" + name + "?")) return;
        result.textContent = verb + "…";
        result.className = "";
        let text;
        try {
          const res = await fetch("/ui/api/services/" + path + "/" + verb, {
            method: "POST", credentials: "same-origin",
            headers: { "X-Solo-CSRF": csrf },
          });
          const body = await res.json().catch(() => ({}));
          if (!res.ok) {
            result.className = "error";
            text = verb + " failed: " + (body.error || res.status);
          } else if (body.service) {
            text = verb + ": " + body.service.state + (body.service.pid ? ", pid " + body.service.pid : "") +
              (body.start_error ? " (" + body.start_error + ")" : "");
          } else {
            text = verb + ": done";
          }
        } catch (e) {
          result.className = "error";
          text = verb + " failed: " + e.message;
        }
        result.textContent = text;
        refresh();
      });
    });

    followLog("/ui/api/services/" + path + "/logs?follow=1&tail=200", document.getElementById("log"));
  }

  // followLog streams a log into pre as text, keeping the last lines.
  async function followLog(url, pre) {
    const keep = 1000;
    const dec = new TextDecoder();
    for (;;) {
      try {
        const res = await fetch(url, { credentials: "same-origin" });
        if (!res.ok || !res.body) { pre.textContent = "(log unavailable: " + res.status + ")"; return; }
        pre.textContent = "";
        const reader = res.body.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.append(dec.decode(value, { stream: true }));
          if (pre.childNodes.length > 64) pre.normalize();
          const lines = pre.textContent.split("\n");
          if (lines.length > keep + 1) pre.textContent = lines.slice(-keep - 1).join("\n");
          if (atEnd) pre.scrollTop = pre.scrollHeight;
        }
      } catch (e) { /* the stream broke: reconnect below */ }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  // --- the events page --------------------------------------------------
  function eventsPage(list) {
    const svc = document.getElementById("ev-service");
    const typ = document.getElementById("ev-type");
    function shown(li) {
      const s = svc.value.trim(), t = typ.value.trim();
      return (!s || li.dataset.service.includes(s)) && (!t || li.dataset.type.includes(t));
    }
    function applyFilter() { for (const li of list.children) li.hidden = !shown(li); }
    svc.addEventListener("input", applyFilter);
    typ.addEventListener("input", applyFilter);
    const backlog = Number(list.dataset.backlog || 200);
    stream(Math.max(1, head + 1 - backlog), {}, (ev) => {
      pushEvent(list, ev, 1000);
      list.firstElementChild.hidden = !shown(list.firstElementChild);
    });
  }

  const services = document.getElementById("services");
  if (services) servicesPage(services);
  const service = document.getElementById("service");
  if (service) servicePage(service);
  const evs = document.getElementById("events");
  if (evs && !service) eventsPage(evs);
})();

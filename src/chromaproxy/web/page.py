"""The annotation page: one HTML document with its script inline, so the server has a single route for it.

It asks ``/api/state`` for the classes and clusters, draws one row per cluster (its strip of heatmap
overlays and two buttons), and posts every click to ``/api/mark``; the row's ``data-mark`` shows what the
server saved, so what the page shows is what micro.json holds. Names reach the page through
``textContent`` only: a class name can never inject markup.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chromaproxy micro-annotation</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
.cluster { border: 2px solid #ccc; border-radius: 6px; padding: 0.5em; margin: 0.6em 0; }
.cluster[data-mark="object"] { border-color: #2a8a2a; }
.cluster[data-mark="distractor"] { border-color: #c0392b; background: #fbeeee; }
.cluster img { display: block; max-width: 100%; margin: 0.4em 0; }
button[aria-pressed="true"] { font-weight: bold; outline: 2px solid #333; }
#status { position: fixed; top: 0.5em; right: 1em; color: #555; }
</style></head>
<body>
<h1>Micro-annotation</h1>
<p>Each row is one cluster of mid-level patterns the network found on a class's predicted foreground;
bright colour marks where the cluster matches on each photo. Mark a cluster <b>distractor</b> when it
fires on something that is not the object (water under a boat, the floor under a dog); its regions are
then removed from the class's localisation maps. Every click is saved at once to micro.json.</p>
<div id="status">loading</div>
<div id="classes"></div>
<script>
const MARKS = ["object", "distractor"];
function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
function show(row, mark) {
  row.dataset.mark = mark || "unmarked";
  for (const b of row.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.mark === mark));
}
async function mark(row, cls, cluster, value) {
  document.getElementById("status").textContent = "saving";
  const r = await fetch("/api/mark", {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify({"class": cls, "cluster": cluster, "mark": value})});
  const reply = await r.json();
  if (!r.ok) { document.getElementById("status").textContent = "not saved: " + reply.error; return; }
  show(row, reply.mark);
  document.getElementById("status").textContent = "saved";
}
function draw(state) {
  const root = document.getElementById("classes");
  for (const cls of state.classes) {
    const section = el("section"); section.id = "class-" + cls.id;
    section.append(el("h2", cls.name + " (class " + cls.id + ")"));
    for (const c of cls.clusters) {
      const row = el("div"); row.className = "cluster"; row.id = "class-" + cls.id + "-cluster-" + c.index;
      row.append(el("div", "cluster " + c.index + ": " + c.patterns + " patterns"));
      const img = el("img"); img.src = c.strip; img.alt = "heatmaps of cluster " + c.index; row.append(img);
      for (const m of MARKS) {
        const b = el("button", m); b.dataset.mark = m;
        b.addEventListener("click", () => mark(row, cls.id, c.index, m));
        row.append(b);
      }
      show(row, c.mark); section.append(row);
    }
    root.append(section);
  }
  document.getElementById("status").textContent = "ready";
}
fetch("/api/state").then(r => r.json()).then(draw);
</script>
</body></html>
"""

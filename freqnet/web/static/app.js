// freqnet's local page: upload -> poll the job -> before/after slider with a zoom loupe -> download.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const modelSelect = $("#model"), detail = $("#detail"), message = $("#message");
const finished = new Set();

async function loadModels() {
  const response = await fetch("/api/models");
  const { models } = await response.json();
  for (const m of models) {
    const option = new Option(`${m.name} (×${m.scale})`, m.name);
    option.title = m.description;
    modelSelect.add(option);
  }
  const note = () => { $("#model-note").textContent = modelSelect.selectedOptions[0]?.title || ""; };
  modelSelect.addEventListener("change", note);
  note();
}

detail.addEventListener("input", () => { $("#detail-value").textContent = Number(detail.value).toFixed(2); });

function submit(files) {
  message.textContent = "";
  for (const file of files) upload(file);
}

async function upload(file) {
  const form = new FormData();
  form.append("image", file);
  form.append("model", modelSelect.value);
  form.append("detail", detail.value);
  const response = await fetch("/api/jobs", { method: "POST", body: form });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status !== 202) {
    message.textContent = `${file.name}: ${body.error || response.statusText}`;
    return;
  }
  track(body);
}

function track(job) {
  const card = $("#job-template").content.firstElementChild.cloneNode(true);
  card.dataset.id = job.id;
  $(".name", card).textContent = job.name;
  $(".sizes", card).textContent = `${job.width}×${job.height} → ${job.out_width}×${job.out_height} (${job.model})`;
  $(".cancel", card).addEventListener("click", () => fetch(`/api/jobs/${job.id}`, { method: "DELETE" }));
  $("#jobs").prepend(card);
  poll(job.id, card);
}

async function poll(id, card) {
  const job = await (await fetch(`/api/jobs/${id}`)).json();
  $(".state", card).textContent = job.state + (job.error ? `: ${job.error}` : "");
  $("progress", card).value = job.progress;
  card.className = `job ${job.state}`;
  if (job.state === "queued" || job.state === "running") {
    setTimeout(() => poll(id, card), 400);
    return;
  }
  $(".cancel", card).hidden = true;
  $("progress", card).hidden = true;
  if (job.state === "done") show(job, card);
}

function show(job, card) {
  const compare = $(".compare", card), before = $(".before", card), after = $(".after", card);
  after.src = `/api/jobs/${job.id}/result`;
  before.src = `/api/jobs/${job.id}/input`;
  compare.hidden = false;
  const link = $(".download", card);
  link.href = `/api/jobs/${job.id}/result?download=1`;
  link.download = job.download_name;
  link.hidden = false;
  finished.add(job.id);
  $("#zip").disabled = false;

  const slider = $(".slider", compare), divider = $(".divider", compare), loupe = $(".loupe", compare);
  slider.addEventListener("input", () => {
    before.style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`;
    divider.style.left = `${slider.value}%`;
  });
  // The loupe shows the result at its full resolution (or 3x the display, whichever is larger) under the pointer.
  compare.addEventListener("mousemove", (event) => {
    const box = compare.getBoundingClientRect();
    const x = event.clientX - box.left, y = event.clientY - box.top;
    const zoom = Math.max(3, after.naturalWidth / box.width);
    const source = x / box.width * 100 < slider.value ? before : after;
    loupe.hidden = false;
    loupe.style.left = `${x - 90}px`;
    loupe.style.top = `${y - 90}px`;
    loupe.style.backgroundImage = `url(${source.src})`;
    loupe.style.imageRendering = source === before ? "pixelated" : "auto";
    loupe.style.backgroundSize = `${box.width * zoom}px ${box.height * zoom}px`;
    loupe.style.backgroundPosition = `${90 - x * zoom}px ${90 - y * zoom}px`;
  });
  compare.addEventListener("mouseleave", () => { loupe.hidden = true; });
}

$("#zip").addEventListener("click", () => {
  window.location = `/api/results.zip?ids=${[...finished].join(",")}`;
});

const drop = $("#drop");
$("#files").addEventListener("change", (event) => { submit(event.target.files); event.target.value = ""; });
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (event) => submit(event.dataTransfer.files));

loadModels();

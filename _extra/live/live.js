// The live page: FOMM's test-time loop (fomm_tutorial.animation.make_animation) in the browser.
//
// For a source image S and driving frames D_0 .. D_{T-1}:
//   kp_source = detector(S), kp_initial = detector(D_0), and for every frame t
//   kp_norm = normalizeKp(kp_source, detector(D_t), kp_initial)   (animation.normalize_kp)
//   result_t = generator(S, kp_source, kp_norm).prediction
// with the ONNX files of `fomm-tutorial export --format onnx` run by onnxruntime-web (wasm).
//
// URL contract (links and tests): ?source=URL&driving=URL&relative=0|1&adapt_scale=0|1, both
// same-origin PNGs, the driving video a horizontal strip of frames. When the result is ready,
// document.body.dataset.status is "done" (else "loading", "running", "error", "needs-server")
// and <img id="fomm-result"> holds the result frames as one PNG strip of the same layout.
//
// A classic script (not a module): opened from file:// it must still run, to say that the page
// needs a local server.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_FRAMES = 96; // frames taken from a reader's own video (at VIDEO_FPS)
  const VIDEO_FPS = 12;
  const PLAY_FPS = 10; // playback speed of the three panels
  const VIEW_SCALE = 4; // canvas pixels per model pixel (the panels are 64 px frames)

  function setStatus(status, message) {
    document.body.dataset.status = status;
    if (message !== undefined) $("progress").textContent = message;
  }

  if (location.protocol === "file:") {
    $("needs-server").hidden = false;
    setStatus("needs-server");
    return;
  }
  $("app").hidden = false;

  // ------------------------------------------------------------------------------------------
  // Keypoint normalisation: fomm_tutorial.animation.normalize_kp / movement_scale
  // ------------------------------------------------------------------------------------------
  // Keypoints: {value: Float32Array(K * 2) of (x, y) in [-1, 1], jacobian: Float32Array(K * 4)
  // row-major 2 x 2 per keypoint, or null}.

  // Area of the convex hull of K points (x, y) (scipy's 2-D ConvexHull.volume): Andrew's
  // monotone chain, then the shoelace formula.
  function convexHullArea(value) {
    const pts = [];
    for (let k = 0; k < value.length / 2; k++) pts.push([value[2 * k], value[2 * k + 1]]);
    pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const half = (points) => {
      const h = [];
      for (const p of points) {
        while (h.length >= 2 && cross(h[h.length - 2], h[h.length - 1], p) <= 0) h.pop();
        h.push(p);
      }
      return h.slice(0, -1);
    };
    const hull = half(pts).concat(half(pts.slice().reverse()));
    let area = 0;
    for (let i = 0; i < hull.length; i++) {
      const [x0, y0] = hull[i];
      const [x1, y1] = hull[(i + 1) % hull.length];
      area += x0 * y1 - x1 * y0;
    }
    if (!(hull.length >= 3 && Math.abs(area) > 0)) {
      throw new Error(
        "the keypoints are degenerate (collinear or coincident): their convex hull has no " +
          "area, so adapted scale cannot be used. Turn adapted scale off.",
      );
    }
    return Math.abs(area) / 2;
  }

  // sqrt(area(hull(kp_source))) / sqrt(area(hull(kp_initial))): the ratio of linear sizes.
  function movementScale(kpSource, kpInitial) {
    return Math.sqrt(convexHullArea(kpSource.value)) / Math.sqrt(convexHullArea(kpInitial.value));
  }

  // 2 x 2 row-major matrices: a @ b and inv(a).
  const mat2 = (a, b) => [
    a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
    a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3],
  ];
  const inv2 = (a) => {
    const det = a[0] * a[3] - a[1] * a[2];
    return [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det];
  };

  // The keypoints that drive the source: absolute (the driving keypoints as they are) or
  // relative: value = (kp_driving - kp_initial) * scale + kp_source and
  // jacobian = J_driving @ inv(J_initial) @ J_source, as make_animation(relative=...).
  function normalizeKp(kpSource, kpDriving, kpInitial, relative, scale) {
    if (!relative) return kpDriving;
    const value = kpDriving.value.map(
      (v, i) => (v - kpInitial.value[i]) * scale + kpSource.value[i],
    );
    let jacobian = null;
    if (kpDriving.jacobian) {
      jacobian = new Float32Array(kpDriving.jacobian.length);
      for (let k = 0; k < jacobian.length; k += 4) {
        const j = (kp) => Array.from(kp.jacobian.subarray(k, k + 4));
        const change = mat2(j(kpDriving), inv2(j(kpInitial)));
        jacobian.set(mat2(change, j(kpSource)), k);
      }
    }
    return { value, jacobian };
  }

  // ------------------------------------------------------------------------------------------
  // Images: a frame is {rgb: Float32Array(H * W * 3) in [0, 1] (NHWC without the batch),
  // image: ImageData of the same pixels}.
  // ------------------------------------------------------------------------------------------
  let manifest = null;
  let frameH = 0;
  let frameW = 0;

  function canvas2d(w, h) {
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    return [c, c.getContext("2d", { willReadFrequently: true })];
  }

  function frameFromImageData(image) {
    const rgb = new Float32Array(image.width * image.height * 3);
    const d = image.data;
    for (let i = 0, j = 0; i < d.length; i += 4, j += 3) {
      rgb[j] = d[i] / 255;
      rgb[j + 1] = d[i + 1] / 255;
      rgb[j + 2] = d[i + 2] / 255;
    }
    return { rgb, image };
  }

  function frameFromRgb(rgb) {
    const image = new ImageData(frameW, frameH);
    for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
      // round(clip(x, 0, 1) * 255), as fomm_tutorial.media writes 8-bit images
      image.data[i] = Math.round(Math.min(Math.max(rgb[j], 0), 1) * 255);
      image.data[i + 1] = Math.round(Math.min(Math.max(rgb[j + 1], 0), 1) * 255);
      image.data[i + 2] = Math.round(Math.min(Math.max(rgb[j + 2], 0), 1) * 255);
      image.data[i + 3] = 255;
    }
    return { rgb, image };
  }

  // Part (sx, sy, sw, sh) of a drawable, resized to the model's frame size (a same-size copy
  // keeps the pixels exactly). Transparent pixels are shown over white.
  function grab(drawable, sx, sy, sw, sh) {
    const [, ctx] = canvas2d(frameW, frameH);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, frameW, frameH);
    ctx.imageSmoothingEnabled = sw !== frameW || sh !== frameH;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(drawable, sx, sy, sw, sh, 0, 0, frameW, frameH);
    return frameFromImageData(ctx.getImageData(0, 0, frameW, frameH));
  }

  function decode(blob) {
    // The pixels as stored: no colour management, no premultiplied alpha.
    return createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  }

  async function fetchBlob(url, what) {
    const target = new URL(url, location.href);
    if (target.origin !== location.origin) {
      throw new Error(`${what} ${url}: only URLs of this site can be read (same origin).`);
    }
    const response = await fetch(target);
    if (!response.ok) throw new Error(`${what} ${url}: ${response.status} ${response.statusText}`);
    return response.blob();
  }

  async function imageFrame(blob) {
    const bitmap = await decode(blob);
    return grab(bitmap, 0, 0, bitmap.width, bitmap.height);
  }

  // A horizontal strip: frames of the strip's height and the model's aspect ratio side by side.
  async function stripFrames(blob, what) {
    const bitmap = await decode(blob);
    const width = Math.round((bitmap.height * frameW) / frameH);
    const count = Math.floor(bitmap.width / width);
    if (count < 1 || bitmap.width % width) {
      throw new Error(
        `${what}: a ${bitmap.width} x ${bitmap.height} image is not a horizontal strip of ` +
          `${width} x ${bitmap.height} frames (give T frames side by side).`,
      );
    }
    const frames = [];
    for (let t = 0; t < count; t++) frames.push(grab(bitmap, t * width, 0, width, bitmap.height));
    return frames;
  }

  const once = (target, event) =>
    new Promise((resolve, reject) => {
      target.addEventListener(event, resolve, { once: true });
      target.addEventListener("error", () => reject(new Error("the video cannot be decoded")), {
        once: true,
      });
    });

  async function videoFrames(blob) {
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    video.src = URL.createObjectURL(blob);
    await once(video, "loadeddata");
    const frames = [];
    for (let t = 0; t < video.duration && frames.length < MAX_FRAMES; t += 1 / VIDEO_FPS) {
      video.currentTime = t;
      await once(video, "seeked");
      frames.push(grab(video, 0, 0, video.videoWidth, video.videoHeight));
    }
    URL.revokeObjectURL(video.src);
    return frames;
  }

  // Animated GIF / WebP / APNG through WebCodecs' ImageDecoder.
  async function animatedFrames(blob) {
    if (typeof ImageDecoder === "undefined") {
      throw new Error(
        "this browser cannot read the frames of an animated image; give a video or a PNG strip.",
      );
    }
    const decoder = new ImageDecoder({ data: await blob.arrayBuffer(), type: blob.type });
    await decoder.tracks.ready;
    const count = Math.min(decoder.tracks.selectedTrack.frameCount, MAX_FRAMES);
    const frames = [];
    for (let i = 0; i < count; i++) {
      const { image } = await decoder.decode({ frameIndex: i });
      frames.push(grab(image, 0, 0, image.displayWidth, image.displayHeight));
      image.close();
    }
    return frames;
  }

  async function drivingFrames(blob, what) {
    if (blob.type.startsWith("video/")) return videoFrames(blob);
    if (blob.type === "image/gif" || blob.type === "image/webp") return animatedFrames(blob);
    return stripFrames(blob, what);
  }

  // ------------------------------------------------------------------------------------------
  // The networks
  // ------------------------------------------------------------------------------------------
  let detector = null;
  let generator = null;

  const tensor = (data, dims) => new ort.Tensor("float32", Float32Array.from(data), dims);

  async function detect(frame) {
    const out = await detector.run({ image: tensor(frame.rgb, [1, frameH, frameW, 3]) });
    return { value: out.value.data, jacobian: out.jacobian ? out.jacobian.data : null };
  }

  async function generate(source, kpSource, kpDriving) {
    const K = manifest.num_kp;
    const feeds = {
      source: tensor(source.rgb, [1, frameH, frameW, 3]),
      kp_source_value: tensor(kpSource.value, [1, K, 2]),
      kp_driving_value: tensor(kpDriving.value, [1, K, 2]),
    };
    if (generator.inputNames.includes("kp_source_jacobian")) {
      feeds.kp_source_jacobian = tensor(kpSource.jacobian, [1, K, 2, 2]);
      feeds.kp_driving_jacobian = tensor(kpDriving.jacobian, [1, K, 2, 2]);
    }
    const out = await generator.run(feeds, ["prediction"]);
    return frameFromRgb(out.prediction.data);
  }

  // ------------------------------------------------------------------------------------------
  // Drawing: the three panels, keypoints as discs in the package's colours (kp_colours)
  // ------------------------------------------------------------------------------------------
  function drawPanel(id, frame, kp) {
    const c = $(id);
    const w = frameW * VIEW_SCALE;
    const h = frameH * VIEW_SCALE;
    if (c.width !== w) [c.width, c.height] = [w, h];
    const ctx = c.getContext("2d");
    if (!frame) {
      ctx.clearRect(0, 0, w, h);
      return;
    }
    const [small, sctx] = canvas2d(frameW, frameH);
    sctx.putImageData(frame.image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, w, h);
    if (!kp) return;
    for (let k = 0; k < kp.value.length / 2; k++) {
      // the coordinate grid's pixel centres: column = (x + 1) / 2 * (W - 1)
      const col = ((kp.value[2 * k] + 1) / 2) * (frameW - 1);
      const row = ((kp.value[2 * k + 1] + 1) / 2) * (frameH - 1);
      const [r, g, b] = manifest.kp_colours[k % manifest.kp_colours.length];
      ctx.beginPath();
      ctx.arc((col + 0.5) * VIEW_SCALE, (row + 0.5) * VIEW_SCALE, 1.4 * VIEW_SCALE, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = "rgba(0, 0, 0, 0.6)";
      ctx.stroke();
    }
  }

  let player = null;
  function play(source, kpSource, driving, kpDriving, results) {
    clearInterval(player);
    let t = 0;
    drawPanel("view-source", source, kpSource);
    const show = () => {
      drawPanel("view-driving", driving[t], kpDriving[t]);
      drawPanel("view-result", results[t], null);
      t = (t + 1) % results.length;
    };
    show();
    player = setInterval(show, 1000 / PLAY_FPS);
  }

  function resultStrip(results) {
    const [c, ctx] = canvas2d(frameW * results.length, frameH);
    results.forEach((frame, t) => ctx.putImageData(frame.image, t * frameW, 0));
    return c.toDataURL("image/png");
  }

  // ------------------------------------------------------------------------------------------
  // One run: every driving frame through detector, normalizeKp and generator
  // ------------------------------------------------------------------------------------------
  let currentRun = 0;
  const inputs = { source: null, driving: null }; // {frames or frame, label, url (or null)}

  async function animate() {
    const run = ++currentRun;
    const stale = () => run !== currentRun;
    const relative = $("relative").checked;
    const adaptScale = $("adapt-scale").checked;
    $("adapt-scale").disabled = !relative;
    const source = inputs.source.frame;
    const driving = inputs.driving.frames;
    const T = driving.length;
    clearInterval(player);
    $("fomm-result").removeAttribute("src");
    drawPanel("view-driving", driving[0], null);
    drawPanel("view-result", null, null);
    setStatus("running", `Animating ${inputs.source.label} with ${inputs.driving.label}\u2026`);

    const start = performance.now();
    const kpSource = await detect(source);
    if (stale()) return;
    drawPanel("view-source", source, kpSource);
    const kpInitial = await detect(driving[0]);
    const scale = relative && adaptScale ? movementScale(kpSource, kpInitial) : 1;
    const kpDriving = [];
    const results = [];
    for (let t = 0; t < T; t++) {
      const kp = t === 0 ? kpInitial : await detect(driving[t]);
      const result = await generate(source, kpSource, normalizeKp(kpSource, kp, kpInitial, relative, scale));
      if (stale()) return;
      kpDriving.push(kp);
      results.push(result);
      drawPanel("view-driving", driving[t], kp);
      drawPanel("view-result", result, null);
      const seconds = (performance.now() - start) / 1000;
      $("progress").textContent =
        `Frame ${t + 1} / ${T} \u00b7 ${((t + 1) / seconds).toFixed(1)} frames/s`;
    }
    const seconds = (performance.now() - start) / 1000;
    const fps = T / seconds;
    $("fomm-result").src = resultStrip(results);
    await $("fomm-result").decode();
    if (stale()) return;
    play(source, kpSource, driving, kpDriving, results);
    document.body.dataset.fps = fps.toFixed(2);
    const motion = relative
      ? `relative motion${adaptScale ? `, adapted scale \u00d7${scale.toFixed(3)}` : ""}`
      : "absolute motion";
    setStatus(
      "done",
      `Done: ${T} frames in ${seconds.toFixed(2)} s, ${fps.toFixed(1)} frames/s ` +
        `(${motion}; keypoint detector + generator for each frame, onnxruntime-web ` +
        `${ort.env.versions?.web ?? ""} on the CPU, WebAssembly, ${ort.env.wasm.numThreads} ` +
        `thread${ort.env.wasm.numThreads === 1 ? "" : "s"}).`,
    );
    if (inputs.source.url && inputs.driving.url) {
      const query = new URLSearchParams({
        source: inputs.source.url,
        driving: inputs.driving.url,
        relative: relative ? "1" : "0",
        adapt_scale: adaptScale ? "1" : "0",
      });
      history.replaceState(null, "", `?${query}`);
    }
  }

  function rerun() {
    animate().catch(fail);
  }

  function fail(error) {
    console.error(error);
    document.body.dataset.error = String(error.message || error);
    setStatus("error", `Error: ${error.message || error}`);
  }

  // ------------------------------------------------------------------------------------------
  // Controls
  // ------------------------------------------------------------------------------------------
  function choiceButtons(containerId, kind, onPick) {
    const container = $(containerId);
    manifest.samples.forEach((sample, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.index = i;
      button.title = sample.name;
      // The driving video's first frame is the same creature's source image.
      button.innerHTML = `<img src="${sample.source}" alt=""><span>${sample.name.slice(-1)}</span>`;
      button.addEventListener("click", () => onPick(i));
      container.appendChild(button);
    });
    return (index) => {
      for (const b of container.querySelectorAll("button")) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.index) === index));
      }
    };
  }

  async function setSource(url, label, blob) {
    inputs.source = { frame: await imageFrame(blob ?? (await fetchBlob(url, "source"))), label, url };
  }

  async function setDriving(url, label, blob) {
    const frames = await drivingFrames(blob ?? (await fetchBlob(url, "driving")), label);
    if (!frames.length) throw new Error(`${label}: no frames could be read.`);
    inputs.driving = { frames, label, url };
  }

  async function main() {
    setStatus("loading", "Loading the model\u2026");
    const response = await fetch("manifest.json");
    if (!response.ok) throw new Error(`manifest.json: ${response.status}; rebuild the book.`);
    manifest = await response.json();
    [frameH, frameW] = manifest.frame_size;

    const params = new URLSearchParams(location.search);
    $("relative").checked = params.get("relative") !== "0";
    $("adapt-scale").checked = params.get("adapt_scale") !== "0";

    const markSource = choiceButtons("source-choices", "source", (i) => {
      const s = manifest.samples[i];
      setSource(s.source, s.name).then(() => (markSource(i), rerun())).catch(fail);
    });
    const markDriving = choiceButtons("driving-choices", "driving", (i) => {
      const s = manifest.samples[i];
      setDriving(s.driving, s.name).then(() => (markDriving(i), rerun())).catch(fail);
    });
    $("source-file").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (file) setSource(null, file.name, file).then(() => (markSource(-1), rerun())).catch(fail);
    });
    $("driving-file").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (file) setDriving(null, file.name, file).then(() => (markDriving(-1), rerun())).catch(fail);
    });
    $("relative").addEventListener("change", rerun);
    $("adapt-scale").addEventListener("change", rerun);

    // Without cross-origin isolation (a plain static server) WebAssembly has one thread.
    ort.env.wasm.numThreads = self.crossOriginIsolated
      ? Math.min(4, navigator.hardwareConcurrency || 1)
      : 1;
    ort.env.wasm.wasmPaths = new URL("vendor/ort/", location.href).href;
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const loadStart = performance.now();
    [detector, generator] = await Promise.all([
      ort.InferenceSession.create(manifest.detector, options),
      ort.InferenceSession.create(manifest.generator, options),
    ]);
    document.body.dataset.loadSeconds = ((performance.now() - loadStart) / 1000).toFixed(2);

    const first = manifest.default;
    if (params.has("source") || params.has("driving")) {
      if (!params.get("source") || !params.get("driving")) {
        throw new Error("give both ?source=URL and &driving=URL (PNG image, PNG strip).");
      }
      await setSource(params.get("source"), params.get("source"));
      await setDriving(params.get("driving"), params.get("driving"));
      const index = (key, url) => manifest.samples.findIndex((s) => s[key] === url);
      markSource(index("source", params.get("source")));
      markDriving(index("driving", params.get("driving")));
    } else {
      const s = manifest.samples[first.source];
      const d = manifest.samples[first.driving];
      await setSource(s.source, s.name);
      await setDriving(d.driving, d.name);
      markSource(first.source);
      markDriving(first.driving);
    }
    await animate();
  }

  if (typeof ort === "undefined") {
    fail(new Error("vendor/ort/ort.wasm.min.js did not load: rebuild the book (make book)."));
  } else {
    main().catch(fail);
  }
})();

// Copy the browser runtimes from node_modules (installed by `npm ci` from the committed
// package-lock.json) into the book's html_extra_path folder, which Sphinx copies to the root of
// _build/html. Nothing copied here is committed (.gitignore).
//
//   node tools/vendor.mjs [EXTRA]      (EXTRA defaults to _extra)
//
// - onnxruntime-web, wasm backend only: EXTRA/live/vendor/ort/ (the live page alone loads it);
// - MathJax 3 (tex-chtml and the files it loads on demand: fonts, TeX extensions, the menu's
//   accessibility parts): EXTRA/mathjax/ (_config.yml: mathjax_path "mathjax/tex-chtml.js").
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const extra = resolve(root, process.argv[2] ?? "_extra");
const modules = join(root, "node_modules");

function packageDir(name) {
  const dir = join(modules, name);
  if (!existsSync(join(dir, "package.json"))) {
    console.error(`${dir} is missing: run \`npm ci\` in ${root} first.`);
    process.exit(2);
  }
  return dir;
}

function version(dir) {
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
}

function replaceDir(target, fill) {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  fill(target);
}

// onnxruntime-web: the classic-script wasm build (a plain <script>, so that the page can still
// say "needs a local server" from file://) and the SIMD wasm binary with its loader, which the
// runtime imports at run time.
const ort = packageDir("onnxruntime-web");
const ortFiles = ["ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];
replaceDir(join(extra, "live", "vendor", "ort"), (target) => {
  for (const f of ortFiles) cpSync(join(ort, "dist", f), join(target, f));
});

// MathJax: every es5 file except the other combined components (tex-svg.js, mml-chtml.js, ...),
// which the book never loads.
const mathjax = packageDir("mathjax");
const es5 = join(mathjax, "es5");
replaceDir(join(extra, "mathjax"), (target) => {
  for (const entry of readdirSync(es5, { withFileTypes: true })) {
    const combined = entry.isFile() && entry.name.endsWith(".js");
    if (combined && entry.name !== "tex-chtml.js") continue;
    cpSync(join(es5, entry.name), join(target, entry.name), { recursive: true });
  }
});

console.log(
  `vendored onnxruntime-web ${version(ort)} -> ${join(extra, "live", "vendor", "ort")}, ` +
    `MathJax ${version(mathjax)} -> ${join(extra, "mathjax")}`,
);

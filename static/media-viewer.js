// <media-viewer src="//HOST/v1/embed/TOKEN"> — panoramas, product spins, videos and images.
// One custom element, shadow DOM, no framework and nothing loaded from third parties at run time.
// The manifest at `src` says which mode to render; every mode reports interaction events in batches.

const STYLE = `
:host { display: block; position: relative; width: 100%; aspect-ratio: 16 / 10; background: #111;
  color: #fff; font: 14px/1.4 system-ui, sans-serif; overflow: hidden; contain: content; user-select: none;
  -webkit-user-select: none; touch-action: none; border-radius: inherit; }
:host([hidden]) { display: none; }
.stage { position: absolute; inset: 0; }
canvas.gl, img.frame, video { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
img.frame, video { object-fit: contain; }
.bar { position: absolute; left: 8px; right: 8px; bottom: 8px; display: flex; gap: 6px; justify-content: flex-end;
  pointer-events: none; }
button { pointer-events: auto; font: inherit; color: #fff; background: rgba(0,0,0,.55); border: 1px solid
  rgba(255,255,255,.35); border-radius: 16px; padding: 5px 11px; cursor: pointer; }
button:focus-visible, .stage:focus-visible { outline: 2px solid #4da3ff; outline-offset: 2px; }
.hint { position: absolute; top: 8px; left: 8px; background: rgba(0,0,0,.5); padding: 3px 9px; border-radius: 12px;
  font-size: 12px; pointer-events: none; transition: opacity .4s; }
.spot { position: absolute; width: 22px; height: 22px; margin: -11px 0 0 -11px; border-radius: 50%;
  background: rgba(255,255,255,.85); border: 2px solid #1d6fe0; }
.card { position: absolute; right: 10px; top: 10px; width: min(46%, 240px); background: #fff; color: #1d232b;
  border-radius: 10px; padding: 10px; box-shadow: 0 6px 24px rgba(0,0,0,.4); }
.card img { width: 100%; max-height: 140px; object-fit: contain; background:
  repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0 / 16px 16px; border-radius: 6px; }
.card h3 { margin: 6px 0 2px; font-size: 15px; } .card p { margin: 0 0 8px; color: #555; }
.card button { background: #1d6fe0; border: 0; width: 100%; } .card .close { background: #888; margin-top: 4px; }
.scrub { position: absolute; left: 8px; right: 8px; bottom: 44px; height: 6px; background: rgba(255,255,255,.3);
  border-radius: 3px; cursor: pointer; pointer-events: auto; }
.scrub i { position: absolute; left: 0; top: 0; bottom: 0; background: #4da3ff; border-radius: 3px; }
.thumb { position: absolute; bottom: 56px; width: 160px; height: 90px; background-repeat: no-repeat;
  border: 2px solid #fff; border-radius: 4px; display: none; }
svg.lasso { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.msg { position: absolute; inset: 0; display: grid; place-items: center; padding: 16px; text-align: center; }
.frag { position: absolute; cursor: pointer; animation: fin .3s ease-out, flo 1.6s ease-in-out .3s infinite alternate; }
.frag:focus-visible { outline: 2px solid #ffd24d; } .frag.got { transition: .35s; opacity: 0; transform: scale(1.5); }
@keyframes fin { from { opacity: 0; transform: scale(.6); } } @keyframes flo { to { translate: 0 -0.8%; } }
.prog { position: absolute; left: 8px; bottom: 58px; background: rgba(0,0,0,.6); padding: 3px 10px; border-radius: 12px; }
.prog.won { background: #1d7f3a; } .card.rules { max-height: 70%; overflow: auto; white-space: pre-line; }
`;

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const el = (tag, attrs = {}, text = "") => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
};

class EventReporter {
  // Batches interaction events and sends them every few seconds (and when the page is hidden).
  constructor(url) {
    this.url = url;
    this.queue = [];
    this.session = Math.random().toString(36).slice(2, 14);
    this.timer = setInterval(() => this.flush(), 5000);
    this.onHide = () => document.visibilityState === "hidden" && this.flush();
    document.addEventListener("visibilitychange", this.onHide);
  }
  add(type, data = {}) {
    if (this.queue.length < 200) this.queue.push({ type, data });
    if (this.queue.length >= 50) this.flush();
  }
  flush() {
    if (!this.url || !this.queue.length) return;
    const events = this.queue.splice(0, 50);
    fetch(this.url, { method: "POST", keepalive: true, credentials: "omit", mode: "cors",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ session: this.session, events }) })
      .catch(() => {});
  }
  stop() {
    this.flush();
    clearInterval(this.timer);
    document.removeEventListener("visibilitychange", this.onHide);
  }
}

// ------------------------------------------------------------------------------------------------ panorama

const VERTEX = "attribute vec2 p; varying vec2 v; void main() { v = p; gl_Position = vec4(p, 0.0, 1.0); }";
const FRAGMENT = `precision highp float;
varying vec2 v; uniform sampler2D tex, t1, t2; uniform vec4 w1, w2;
uniform float yaw, pitch, fov, aspect, hfov, vfov, voff;
vec4 layer(sampler2D t, vec4 w, vec2 uv) {
  // tiles over the window w (x0, y0, x1, y1 of the image); texels without a tile yet are transparent
  vec2 q = (uv - w.xy) / (w.zw - w.xy);
  return q.x < 0.0 || q.x > 1.0 || q.y < 0.0 || q.y > 1.0 ? vec4(0.0) : texture2D(t, q);
}
void main() {
  float f = tan(fov * 0.5);
  vec3 d = normalize(vec3(v.x * f * aspect, v.y * f, -1.0));
  float cp = cos(pitch), sp = sin(pitch);
  d = vec3(d.x, d.y * cp - d.z * sp, d.y * sp + d.z * cp);
  float cy = cos(yaw), sy = sin(yaw);
  d = vec3(d.x * cy - d.z * sy, d.y, d.x * sy + d.z * cy);
  float lon = atan(d.x, -d.z);
  float lat = asin(clamp(d.y, -1.0, 1.0));
  vec2 uv = vec2(lon / hfov + 0.5, 0.5 - (lat - voff) / vfov);
  if (uv.x < 0.0 || uv.x > 1.0 || uv.y < 0.0 || uv.y > 1.0) { gl_FragColor = vec4(0.07, 0.07, 0.07, 1.0); }
  else {
    // finest first, each over the next (premultiplied, so tile edges blend); stop once opaque
    vec4 c = layer(t2, w2, uv);
    if (c.a < 1.0) c += (1.0 - c.a) * layer(t1, w1, uv);
    if (c.a < 1.0) c.rgb += (1.0 - c.a) * texture2D(tex, uv).rgb;
    gl_FragColor = vec4(c.rgb, 1.0);
  }
}`;

const TILE_LOADS = 6;  // tiles fetched at once (a browser opens at most 6 connections to a host over HTTP/1.1)
const NO_WINDOW = [-2, -2, -1, -1];

class PanoramaMode {
  // Equirectangular image on a WebGL quad; partial coverage (hfov/vfov < 360/180) is shown as it is.
  // The preview comes first; then, when the manifest has tiles, only the tiles the view needs at the
  // resolution the screen needs are fetched and composed over it (without tiles: the whole image).
  constructor(viewer, spec) {
    this.v = viewer;
    this.spec = spec;
    this.hfov = (spec.hfov || 360) * Math.PI / 180;
    this.vfov = (spec.vfov || 180) * Math.PI / 180;
    this.voff = (spec.v_offset || 0) * Math.PI / 180;  // latitude of the image's centre (partial panoramas)
    this.yaw = (spec.initial_yaw || 0) * Math.PI / 180;
    this.pitch = this.voff;
    this.fov = clamp((spec.initial_fov || 75) * Math.PI / 180, 0.35, 1.75);
    this.velocity = 0;
    this.spin = 0.0015;
    this.autorotate = !matchMedia("(prefers-reduced-motion: reduce)").matches && (spec.autorotate ?? true);
    this.levels = [];
    this.layers = [];  // at most two tile levels, coarser first, drawn over the preview
    this.tiles = new Map();  // "level/column/row" -> {level, c, r, img}: img undefined while loading, null if failed
    this.want = [];
    this.busy = 0;
    this.version = 0;  // changes whenever the textures do, so a still view is drawn again
  }
  mount(stage) {
    this.canvas = el("canvas", { class: "gl", role: "img", "aria-label": this.v.label("360° panorama") });
    stage.append(this.canvas);
    const gl = this.gl = this.canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: true });
    if (!gl) return this.v.fail("This browser cannot show 360° panoramas (WebGL is off).");
    const program = gl.createProgram();
    for (const [type, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      gl.attachShader(program, shader);
    }
    gl.linkProgram(program);
    gl.useProgram(program);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(program, "p");
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    this.u = Object.fromEntries(["yaw", "pitch", "fov", "aspect", "hfov", "vfov", "voff", "t1", "t2", "w1", "w2"].map(
      (n) => [n, gl.getUniformLocation(program, n)]));
    gl.uniform1i(this.u.t1, 1);
    gl.uniform1i(this.u.t2, 2);
    this.empty = this.texture(1, 1);
    this.maxTexture = Math.min(4096, gl.getParameter(gl.MAX_TEXTURE_SIZE));
    const tiles = this.spec.tiles;
    const tiled = tiles && tiles.tile_size > 0 && (tiles.levels || []).some((l) => l.urls);
    const whole = this.spec.preview && this.spec.src !== this.spec.preview;
    this.loadTexture(this.spec.preview || this.spec.src).then((width) => {
      if (!width) return;
      if (tiled) {
        // only levels sharper than the preview are worth fetching, coarsest first
        this.tileSize = tiles.tile_size;
        this.span = Math.max(1, Math.floor(this.maxTexture / this.tileSize));  // tiles along a texture's side
        this.levels = tiles.levels.filter((l) => l.urls && l.width > width).sort((a, b) => a.width - b.width);
        this.baseRes = width / this.hfov;
      } else if (whole) this.loadTexture(this.spec.src).then((w) => w && this.sharp(true));
      else this.sharp(true);
    });
    this.v.addDrag(this.canvas, (dx, dy) => this.look(dx, dy), (vx) => { this.velocity = vx; });
    this.v.addZoom(this.canvas, (factor) => this.zoom(factor));
    this.spots = (this.spec.hotspots || []).map((h) => {
      const spot = el("button", { class: "spot", "aria-label": h.label || "hotspot", title: h.label || "" });
      spot.addEventListener("click", () => this.v.emit("hotspot", h));
      stage.append(spot);
      return { h, spot };
    });
    this.v.addButton("Motion", "Look around by turning your phone", () => this.v.enableMotion((o) => this.orient(o)));
    this.v.addButton("⤢", "Fullscreen", () => this.v.fullscreen());
    this.v.keys = (key) => ({ ArrowLeft: () => this.look(-40, 0), ArrowRight: () => this.look(40, 0),
      ArrowUp: () => this.look(0, -40), ArrowDown: () => this.look(0, 40), "+": () => this.zoom(0.9),
      "-": () => this.zoom(1.1) })[key];
    this.loop = () => {
      if (!this.v.isConnected) return;
      if (Math.abs(this.velocity) > 0.01) { this.look(this.velocity * 16, 0, true); this.velocity *= 0.94; }
      else if (this.autorotate) {
        this.yaw += this.spin;  // a partial panorama swings between its edges
        if (!this.full() && Math.abs(this.yaw) >= this.room()) this.spin = -this.spin;
        this.limit();
      }
      this.draw();
      this.frame = requestAnimationFrame(this.loop);
    };
    this.frame = requestAnimationFrame(this.loop);
  }
  texture(width, height, image) {
    // an RGBA texture: an image, or transparent texels that tiles fill in later
    const gl = this.gl;
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    if (image) gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, image);
    else gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, width, height, 0, gl.RGBA, gl.UNSIGNED_BYTE, null);
    return texture;
  }
  loadTexture(url) {
    // resolves to the texture's width once it is drawn (0 when the image could not be loaded)
    return this.v.loadImage(url).then((image) => {
      const fitted = this.v.fitTexture(image, this.gl);
      if (this.base) this.gl.deleteTexture(this.base);
      this.base = this.texture(0, 0, fitted);
      this.ready = true;
      this.version++;
      this.v.rendered();
      return fitted.naturalWidth || fitted.width;
    }, () => { this.v.fail("The panorama could not be loaded."); return 0; });
  }
  sharp(done) { this.v.toggleAttribute("data-sharp", done); }
  stream(w, h) {
    // which tiles the view needs now: the coarsest level at least as sharp as the screen (none while the
    // preview is enough; a coarser one when its visible tiles would not fit in the GPU's largest texture),
    // and of it the tiles the view sees, nearest the centre first
    const view = [this.yaw, this.pitch, this.fov, w, h].join();
    const now = performance.now();
    if (view === this.view || now - this.streamed < 120) return;
    this.view = view;
    this.streamed = now;
    const need = h / (2 * Math.tan(this.fov / 2));  // canvas pixels per radian at the centre of the view
    const levels = this.levels;
    let i = need > this.baseRes ? levels.findIndex((l) => l.width / this.hfov >= need) : -2;
    if (i === -1) i = levels.length - 1;
    let seen = [], box;
    for (; i >= 0; i--) {
      seen = this.visible(levels[i], w, h);
      box = ["c", "r"].flatMap((k) => [Math.min(...seen.map((t) => t[k])), Math.max(...seen.map((t) => t[k]))]);
      if (!i || (box[1] - box[0] < this.span && box[3] - box[2] < this.span)) break;
    }
    const layer = i >= 0 && seen.length && this.layer(levels[i]);
    if (layer) this.window(layer, box);
    this.want = layer ? seen.filter(({ c, r }) => c >= layer.c0 && r >= layer.r0 && c < layer.c0 + layer.nc
      && r < layer.r0 + layer.nr) : [];
    this.pump();
  }
  uvAt(x, y, aspect) {
    // where the ray through (x, y) of the view (-1..1) points in the image (0..1 inside), as the shader computes
    const f = Math.tan(this.fov / 2), cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    const cy = Math.cos(this.yaw), sy = Math.sin(this.yaw);
    let dx = x * f * aspect, dy = y * f, dz = -1;
    [dy, dz] = [dy * cp - dz * sp, dy * sp + dz * cp];
    [dx, dz] = [dx * cy - dz * sy, dx * sy + dz * cy];
    const lat = Math.asin(dy / Math.hypot(dx, dy, dz));
    return [Math.atan2(dx, -dz) / this.hfov + 0.5, 0.5 - (lat - this.voff) / this.vfov];
  }
  visible(level, w, h) {
    // rays through a grid over the view; every tile between two neighbouring rays is seen (so narrow edge
    // tiles are not missed), a ray outside a partial panorama counts at the edge it passed
    const T = this.tileSize, n = level.columns, nx = Math.ceil(w / 64), ny = Math.ceil(h / 64);
    const rays = [], seen = new Map();
    for (let j = 0; j <= ny; j++) {
      for (let i = 0; i <= nx; i++) {
        const x = (2 * i) / nx - 1, y = (2 * j) / ny - 1, [u, v] = this.uvAt(x, y, w / h);
        rays.push({ in: u >= 0 && u <= 1 && v >= 0 && v <= 1, d: (x * w) ** 2 + (y * h) ** 2,
          c: clamp(Math.floor((u * level.width) / T), 0, n - 1),
          r: clamp(Math.floor((v * level.height) / T), 0, level.rows - 1) });
      }
    }
    const between = (a, b) => {
      if (!a.in && !b.in) return;
      const d = Math.min(a.d, b.d), jump = b.c - a.c;
      const step = Math.sign(jump) * (this.full() && Math.abs(jump) > n / 2 ? -1 : 1);  // round the seam
      for (let c = a.c; ; c = (c + step + n) % n) {
        for (let r = Math.min(a.r, b.r); r <= Math.max(a.r, b.r); r++) {
          const key = `${level.level}/${c}/${r}`;
          if (!(seen.get(key)?.d <= d)) seen.set(key, { key, level, c, r, d });
        }
        if (c === b.c) break;
      }
    };
    rays.forEach((a, k) => {
      if (k % (nx + 1) < nx) between(a, rays[k + 1]);
      if (k + nx + 1 < rays.length) between(a, rays[k + nx + 1]);
    });
    return [...seen.values()].sort((a, b) => a.d - b.d);
  }
  layer(level) {
    // the level's texture; the two most recent levels stay, so zooming never falls back to the blurry preview
    let layer = this.layers.find((l) => l.level === level);
    if (layer) return layer;
    if (this.layers.length > 1) {
      const far = (l) => Math.abs(l.level.width - level.width);
      this.layers.sort((a, b) => far(b) - far(a) || a.level.width - b.level.width);
      this.gl.deleteTexture(this.layers.shift().tex);
      this.version++;
    }
    layer = { level, nc: Math.min(level.columns, this.span), nr: Math.min(level.rows, this.span) };
    this.layers.push(layer);
    this.layers.sort((a, b) => a.level.width - b.level.width);
    return layer;
  }
  window(layer, [c1, c2, r1, r2]) {
    // a level larger than the GPU's texture limit is held as a window of tiles around what the view sees; it
    // moves when a visible tile is outside it, and is refilled from the tiles already fetched
    const { level, nc, nr } = layer, T = this.tileSize;
    if (layer.tex && c1 >= layer.c0 && r1 >= layer.r0 && c2 < layer.c0 + nc && r2 < layer.r0 + nr) return;
    const c0 = clamp(Math.round((c1 + c2 + 1 - nc) / 2), 0, level.columns - nc);
    const r0 = clamp(Math.round((r1 + r2 + 1 - nr) / 2), 0, level.rows - nr);
    const x1 = Math.min(level.width, (c0 + nc) * T), y1 = Math.min(level.height, (r0 + nr) * T);
    if (layer.tex) this.gl.deleteTexture(layer.tex);
    Object.assign(layer, { c0, r0, tex: this.texture(x1 - c0 * T, y1 - r0 * T),
      win: [(c0 * T) / level.width, (r0 * T) / level.height, x1 / level.width, y1 / level.height] });
    for (const tile of this.tiles.values()) this.put(layer, tile);
    this.version++;
  }
  put(layer, tile) {
    const c = tile.c - layer.c0, r = tile.r - layer.r0, gl = this.gl;
    if (tile.level !== layer.level || !tile.img || c < 0 || r < 0 || c >= layer.nc || r >= layer.nr) return;
    gl.bindTexture(gl.TEXTURE_2D, layer.tex);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, c * this.tileSize, r * this.tileSize, gl.RGBA, gl.UNSIGNED_BYTE, tile.img);
    this.version++;
  }
  pump() {
    // a few tiles at a time, in the order the view wants them; each is fetched once (a failed one for good:
    // the preview stays there)
    for (const want of this.want) {
      if (this.busy >= TILE_LOADS) break;
      if (this.tiles.has(want.key)) continue;
      const tile = { level: want.level, c: want.c, r: want.r };
      this.tiles.set(want.key, tile);
      this.busy++;
      this.v.loadImage(want.level.urls[want.r][want.c]).then((img) => {
        tile.img = img;
        for (const layer of this.layers) this.put(layer, tile);
      }).catch(() => { tile.img = null; }).then(() => { this.busy--; this.pump(); });
    }
    this.sharp(this.want.every((want) => this.tiles.get(want.key)?.img !== undefined));
  }
  room() {
    const hview = 2 * Math.atan(Math.tan(this.fov / 2) * this.aspect());
    return Math.max(0, (this.hfov - hview) / 2);
  }
  full() { return this.hfov >= 2 * Math.PI - 0.01; }
  maxFov() {
    // never zoom out past what the photos cover, so a partial panorama fills the view
    const byWidth = this.full() ? Math.PI : 2 * Math.atan(Math.tan(this.hfov / 2) / this.aspect());
    return Math.min(1.75, this.vfov, byWidth);
  }
  look(dx, dy, inertial = false) {
    if (!inertial) { this.autorotate = false; this.v.interacted("drag"); }
    const perPixel = this.fov / Math.max(1, this.canvas.clientHeight);
    this.yaw += dx * perPixel;
    this.pitch -= dy * perPixel;
    this.limit();
  }
  limit() {
    this.fov = clamp(this.fov, Math.min(0.35, this.maxFov()), this.maxFov());
    const half = Math.max(0, (this.vfov - this.fov) / 2);
    this.pitch = clamp(this.pitch, this.voff - half, this.voff + half);
    if (!this.full()) this.yaw = clamp(this.yaw, -this.room(), this.room());
  }
  zoom(factor) {
    this.autorotate = false;
    this.fov *= factor;
    this.limit();
    this.v.interacted("zoom");
  }
  orient({ alpha, beta }) {
    // relative to the view when motion started: turning the phone turns the view from where it was
    this.autorotate = false;
    if (!this.origin) this.origin = { alpha, beta, yaw: this.yaw, pitch: this.pitch };
    const turn = ((alpha - this.origin.alpha + 540) % 360) - 180;
    this.yaw = this.origin.yaw - turn * Math.PI / 180;
    this.pitch = this.origin.pitch + (beta - this.origin.beta) * Math.PI / 180;
    this.limit();
  }
  aspect() { return this.canvas.clientWidth / Math.max(1, this.canvas.clientHeight); }
  draw() {
    const gl = this.gl;
    if (!gl || !this.ready) return;
    const ratio = Math.min(2, devicePixelRatio || 1);
    const w = Math.round(this.canvas.clientWidth * ratio), h = Math.round(this.canvas.clientHeight * ratio);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w; this.canvas.height = h;
      this.limit();
    }
    if (this.levels.length) this.stream(w, h);
    // nothing moved and no new pixels: the canvas keeps its frame (no GPU work while the view is still)
    const frame = [this.yaw, this.pitch, this.fov, w, h, this.version].join();
    if (frame === this.drawn) return;
    this.drawn = frame;
    gl.viewport(0, 0, w, h);
    const u = this.u;
    gl.uniform1f(u.yaw, this.yaw); gl.uniform1f(u.pitch, this.pitch); gl.uniform1f(u.fov, this.fov);
    gl.uniform1f(u.aspect, w / Math.max(1, h)); gl.uniform1f(u.hfov, this.hfov); gl.uniform1f(u.vfov, this.vfov);
    gl.uniform1f(u.voff, this.voff);
    [this.base, ...[0, 1].map((i) => this.layers[i]?.tex || this.empty)].forEach((tex, i) => {
      gl.activeTexture(gl.TEXTURE0 + i);
      gl.bindTexture(gl.TEXTURE_2D, tex);
    });
    gl.uniform4fv(u.w1, this.layers[0]?.win || NO_WINDOW);
    gl.uniform4fv(u.w2, this.layers[1]?.win || NO_WINDOW);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    for (const { h, spot } of this.spots) this.place(spot, h);
  }
  place(spot, h) {
    // project the hotspot's direction into the view (inverse of the shader's rotation)
    const lon = h.yaw * Math.PI / 180 - this.yaw, lat = h.pitch * Math.PI / 180;
    let x = Math.cos(lat) * Math.sin(lon), y = Math.sin(lat), z = -Math.cos(lat) * Math.cos(lon);
    const cp = Math.cos(-this.pitch), sp = Math.sin(-this.pitch);
    [y, z] = [y * cp - z * sp, y * sp + z * cp];
    const f = Math.tan(this.fov / 2);
    const visible = z < 0;
    spot.style.display = visible ? "" : "none";
    if (visible) {
      spot.style.left = `${(0.5 + x / (-z * f * this.aspect()) / 2) * 100}%`;
      spot.style.top = `${(0.5 - y / (-z * f) / 2) * 100}%`;
    }
  }
  stop() { cancelAnimationFrame(this.frame); this.want = []; }
}

// ---------------------------------------------------------------------------------------------------- spin

class SpinMode {
  // Turntable frames: a coarse set loads first so the product turns at once, the rest fills in.
  constructor(viewer, spec) {
    this.v = viewer;
    this.spec = spec;
    this.frames = spec.frames || [];
    this.images = new Array(this.frames.length);
    this.index = 0;
    this.scale = 1;
    this.pixelsPerFrame = spec.pixels_per_frame || 8;
  }
  mount(stage) {
    this.img = el("img", { class: "frame", alt: this.v.label("Product, turn to see every side"), draggable: "false" });
    stage.style.background = this.spec.background || "#fff";  // product shots sit on a light backdrop
    stage.append(this.img);
    const n = this.frames.length;
    if (!n) return this.v.fail("This spin has no frames.");
    // the first frame alone, then a coarse turn (every ~30 degrees), then the rest
    const step = Math.max(2, Math.round(n / 12));
    const coarse = [...Array(n).keys()].filter((i) => i > 0 && i % step === 0);
    const rest = [...Array(n).keys()].filter((i) => i % step !== 0);
    this.load([0]).then(() => { this.show(0); this.v.rendered(); return this.load(coarse); })
      .then(() => this.load(rest));
    let carry = 0;
    this.v.addDrag(this.img, (dx) => {
      carry += dx;
      const steps = Math.trunc(carry / this.pixelsPerFrame);
      if (steps) { carry -= steps * this.pixelsPerFrame; this.turn(-steps); this.v.interacted("spin"); }
    });
    this.v.addZoom(this.img, (factor) => this.zoom(1 / factor));
    this.v.addButton("Tilt", "Spin by tilting your phone", () => this.v.enableMotion(({ gamma }) => {
      this.show(Math.round(((gamma + 90) / 180) * (n - 1)));
    }));
    this.v.keys = (key) => ({ ArrowLeft: () => this.turn(1), ArrowRight: () => this.turn(-1),
      "+": () => this.zoom(1.2), "-": () => this.zoom(1 / 1.2) })[key];
  }
  load(indices) {
    return Promise.all(indices.map((i) => this.v.loadImage(this.frames[i]).then((image) => {
      this.images[i] = image;
    }, () => {})));
  }
  turn(steps) { this.show(this.index + steps); }
  show(index) {
    const n = this.frames.length;
    let i = ((index % n) + n) % n;
    for (let k = 0; k < n && !this.images[i]; k++) i = (i + 1) % n;  // nearest loaded frame
    this.index = i;
    if (this.images[i]) this.img.src = this.images[i].src;
    this.img.dataset.frame = String(i);
  }
  zoom(factor) {
    this.scale = clamp(this.scale * factor, 1, 4);
    this.img.style.transform = `scale(${this.scale})`;
    this.v.interacted("zoom");
  }
  stop() {}
}

// --------------------------------------------------------------------------------------------------- video

class VideoMode {
  // HLS where the browser plays it, MP4 otherwise; tap or circle a product to see it and add it to the cart.
  constructor(viewer, spec, manifest) {
    this.v = viewer;
    this.spec = spec;
    this.tapsUrl = manifest.taps_url || null;
    this.cartUrl = manifest.cart_url || null;
  }
  mount(stage) {
    const video = this.video = el("video", { playsinline: "", preload: "metadata", "aria-label": this.v.label("Video") });
    video.muted = !!this.spec.muted;
    if (this.spec.poster) video.poster = this.spec.poster;
    const hls = this.spec.hls && video.canPlayType("application/vnd.apple.mpegurl");
    video.src = hls ? this.spec.hls : this.spec.mp4;
    video.crossOrigin = "anonymous";
    stage.append(video);
    video.addEventListener("loadeddata", () => this.v.rendered(), { once: true });
    video.addEventListener("error", () => this.v.fail("The video could not be played."));
    video.addEventListener("play", () => this.v.interacted("play"));
    this.lasso = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.lasso.setAttribute("class", "lasso");
    this.lasso.setAttribute("viewBox", "0 0 1 1");
    this.lasso.setAttribute("preserveAspectRatio", "none");
    stage.append(this.lasso);
    this.addScrubber(stage);
    this.v.addButton("▶︎/❚❚", "Play or pause", () => (video.paused ? video.play() : video.pause()));
    this.v.addButton("⤢", "Fullscreen", () => this.v.fullscreen());
    if (this.tapsUrl) this.addTapping(video);
    this.v.keys = (key) => ({ " ": () => (video.paused ? video.play() : video.pause()),
      ArrowLeft: () => { video.currentTime -= 5; }, ArrowRight: () => { video.currentTime += 5; } })[key];
  }
  addScrubber(stage) {
    const bar = el("div", { class: "scrub", role: "slider", "aria-label": "Seek", tabindex: "0" });
    const fill = el("i");
    const thumb = el("div", { class: "thumb" });
    bar.append(fill);
    stage.append(bar, thumb);
    const video = this.video;
    video.addEventListener("timeupdate", () => {
      fill.style.width = `${(video.currentTime / (video.duration || 1)) * 100}%`;
    });
    const cues = this.spec.storyboard ? this.loadStoryboard(this.spec.storyboard) : Promise.resolve([]);
    const at = (event) => clamp((event.clientX - bar.getBoundingClientRect().left) / bar.clientWidth, 0, 1);
    bar.addEventListener("pointermove", (event) => cues.then((list) => {
      const t = at(event) * (video.duration || 0);
      const cue = list.find((c) => t >= c.start && t < c.end);
      thumb.style.display = cue ? "block" : "none";
      if (cue) {
        thumb.style.backgroundImage = `url("${cue.url}")`;
        thumb.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
        thumb.style.width = `${cue.w}px`; thumb.style.height = `${cue.h}px`;
        thumb.style.left = `${clamp(event.clientX - stage.getBoundingClientRect().left - cue.w / 2, 0,
          stage.clientWidth - cue.w)}px`;
      }
    }));
    bar.addEventListener("pointerleave", () => { thumb.style.display = "none"; });
    bar.addEventListener("pointerdown", (event) => {
      event.stopPropagation();
      video.currentTime = at(event) * (video.duration || 0);
    });
  }
  loadStoryboard(url) {
    // WebVTT cues whose text is "sprite.jpg#xywh=x,y,w,h"
    const seconds = (s) => s.split(":").reduce((acc, part) => acc * 60 + parseFloat(part), 0);
    return fetch(url, { credentials: "omit" }).then((r) => r.text()).then((text) => text.split(/\n\n+/).map((block) => {
      const lines = block.trim().split("\n");
      const timing = lines.find((l) => l.includes("-->"));
      const target = lines[lines.length - 1];
      if (!timing || !target.includes("#xywh=")) return null;
      const [start, end] = timing.split("-->").map((s) => seconds(s.trim().split(" ")[0]));
      const [file, frag] = target.split("#xywh=");
      const [x, y, w, h] = frag.split(",").map(Number);
      return { start, end, x, y, w, h, url: new URL(file, url).href };
    }).filter(Boolean)).catch(() => []);
  }
  addTapping(video) {
    // a tap is a point; a drag draws a lasso; both are sent in normalised video coordinates
    let points = null;
    const toVideo = (event) => {
      const box = video.getBoundingClientRect();
      const vw = video.videoWidth || box.width, vh = video.videoHeight || box.height;
      const scale = Math.min(box.width / vw, box.height / vh);
      const ox = (box.width - vw * scale) / 2, oy = (box.height - vh * scale) / 2;
      return [clamp((event.clientX - box.left - ox) / (vw * scale), 0, 1),
        clamp((event.clientY - box.top - oy) / (vh * scale), 0, 1)];
    };
    video.addEventListener("pointerdown", (event) => { points = [toVideo(event)]; });
    video.addEventListener("pointermove", (event) => {
      if (!points) return;
      points.push(toVideo(event));
      const path = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      path.setAttribute("points", points.map((p) => p.join(",")).join(" "));
      path.setAttribute("fill", "rgba(77,163,255,.15)");
      path.setAttribute("stroke", "#4da3ff");
      path.setAttribute("stroke-width", "0.006");
      this.lasso.replaceChildren(path);
    });
    video.addEventListener("pointerup", () => {
      if (!points) return;
      const spread = Math.max(...points.map((p) => Math.hypot(p[0] - points[0][0], p[1] - points[0][1])));
      const body = spread > 0.03 && points.length > 3
        ? { t: video.currentTime, polygon: points } : { t: video.currentTime, x: points[0][0], y: points[0][1] };
      points = null;
      this.tap(body);
    });
  }
  tap(body) {
    this.v.interacted("tap");
    return fetch(this.tapsUrl, { method: "POST", credentials: "omit", mode: "cors",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then((r) => r.json()).then((answer) => this.showProduct(answer))
      .catch(() => this.lasso.replaceChildren());
  }
  showProduct(answer) {
    this.lasso.replaceChildren();
    this.card?.remove();
    const product = answer && answer.product;
    if (product) return this.productCard(answer, product);
    // Not sure which product this is (variants of one design, a view the catalog lacks): the shopper picks.
    const options = (answer && answer.uncertain && answer.candidates) || [];
    if (!options.length) return;
    this.video.pause();
    const card = this.card = el("div", { class: "card", role: "dialog", "aria-label": "Which product is it?" });
    card.append(el("h3", {}, "Which product is it?"));
    for (const option of options.slice(0, 4)) {
      const pick = el("button", { class: "add" }, option.title || option.sku);
      pick.addEventListener("click", () => { card.remove(); this.productCard(answer, option); });
      card.append(pick);
    }
    const close = el("button", { class: "close" }, "Close");
    close.addEventListener("click", () => card.remove());
    card.append(close);
    this.v.stage.append(card);
  }
  productCard(answer, product) {
    this.video.pause();
    const card = this.card = el("div", { class: "card", role: "dialog", "aria-label": product.title || product.sku });
    const picture = (answer.cutout && answer.cutout.url) || product.image_url;
    if (picture) card.append(el("img", { src: picture, alt: product.title || "" }));
    card.append(el("h3", {}, product.title || product.sku));
    if (product.price != null) card.append(el("p", {}, `${product.price} ${product.currency || ""}`.trim()));
    const add = el("button", { class: "add" }, "Add to cart");
    add.addEventListener("click", () => {
      const detail = { sku: product.sku, title: product.title, price: product.price, currency: product.currency,
        url: product.url };
      this.v.emit("add-to-cart", detail);
      this.v.interacted("add_to_cart", { sku: product.sku });
      if (this.cartUrl && answer.cart) {  // the merchant's signed cart webhook, when configured
        fetch(this.cartUrl, { method: "POST", credentials: "omit", mode: "cors",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ cart_token: answer.cart.token, sku: product.sku }) }).catch(() => {});
      }
      card.remove();
    });
    const close = el("button", { class: "close" }, "Close");
    close.addEventListener("click", () => card.remove());
    card.append(add, close);
    this.v.stage.append(card);
  }
  stop() { this.video?.pause(); }
}

class ImageMode {
  constructor(viewer, spec) { this.v = viewer; this.spec = spec; }
  mount(stage) {
    const img = el("img", { class: "frame", alt: this.v.label("Product image"), src: this.spec.src });
    img.addEventListener("load", () => this.v.rendered(), { once: true });
    img.addEventListener("error", () => this.v.fail("The image could not be loaded."));
    stage.append(img);
  }
  stop() {}
}

// ------------------------------------------------------------------------------------------------ campaign

class CampaignMode extends VideoMode {
  // A prize campaign's video: logo fragments to collect by tapping them (or with the C key) for a draw entry.
  // The server reveals the schedule a few seconds at a time for this viewer's session, and checks every claim.
  constructor(viewer, spec) {
    super(viewer, spec.video, {});
    this.c = spec;
    this.base = new URL(viewer.getAttribute("src"), location.href).href.replace(/\/?$/, "/");
    this.items = new Map();
    this.nodes = new Map();
    this.until = -1;
  }
  mount(stage) {
    super.mount(stage);
    this.layer = el("div", { class: "frags" });
    this.prog = el("div", { class: "prog", role: "status", "aria-live": "polite" });
    stage.append(this.layer, this.prog);
    this.v.addButton("Rules", "Prize draw rules", () => this.showRules());
    const keys = this.v.keys;
    this.v.keys = (key) => (key === "c" || key === "C" ? () => this.collectVisible() : keys(key));
    if (this.c.mode === "burned") this.video.addEventListener("pointerup", (e) => this.claim(null, this.at(e)));
    const shopper = this.v.getAttribute("shopper");
    this.call("session", { method: "POST", body: shopper ? { shopper_id: shopper } : { device_id: this.device() } })
      .then((s) => {
        this.session = s.session;
        this.show(s);
        this.video.addEventListener("timeupdate", () => this.tick());
        this.timer = setInterval(() => this.tick(), 250);
      }).catch((p) => this.say((p && p.detail) || "The prize game is not available."));
  }
  call(name, { method = "GET", body, query } = {}) {
    const url = new URL(this.c.endpoints[name], this.base);
    for (const [k, v] of Object.entries(query || {})) url.searchParams.set(k, v);
    return fetch(url, { method, credentials: "omit", mode: "cors", headers: { "Content-Type": "application/json" },
      body: body && JSON.stringify(body) }).then((r) => r.json().then((b) => (r.ok ? b : Promise.reject(b))));
  }
  device() {
    // an anonymous device id, kept so a reload is the same shopper (one entry per shopper)
    try {
      const id = localStorage.getItem("mv-device") || crypto.randomUUID();
      localStorage.setItem("mv-device", id);
      return id;
    } catch { return this.v.reporter.session; }
  }
  at(event) {
    // normalised video coordinates of a pointer event (the video is letterboxed in the element)
    const r = this.frame();
    return [clamp((event.clientX - r.x) / r.w, 0, 1), clamp((event.clientY - r.y) / r.h, 0, 1)];
  }
  frame() {
    const v = this.video, box = v.getBoundingClientRect(), vw = v.videoWidth || 16, vh = v.videoHeight || 9;
    const s = Math.min(box.width / vw, box.height / vh);
    return { x: box.left + (box.width - vw * s) / 2, y: box.top + (box.height - vh * s) / 2, w: vw * s, h: vh * s };
  }
  tick() {
    const t = this.video.currentTime;
    if (this.c.mode === "overlay" && !this.busy && t + 1.5 > this.until) {
      this.busy = true;
      this.call("schedule", { query: { session: this.session, t: t.toFixed(3) } }).then((s) => {
        this.until = s.until;
        for (const item of s.items) this.items.set(item.fragment, item);
      }).catch(() => {}).finally(() => { this.busy = false; });
    }
    const stage = this.v.stage.getBoundingClientRect(), r = this.frame();
    for (const [i, item] of this.items) {
      const on = t >= item.start && t <= item.end && !this.done?.includes(i);
      let node = this.nodes.get(i);
      if (on && !node) {
        node = el("img", { class: "frag", src: this.c.fragments[i].src, role: "button", tabindex: "0", alt: "",
          "aria-label": `Logo fragment ${i + 1}: press Enter or C to collect` });
        node.addEventListener("pointerup", (e) => { e.stopPropagation(); this.claim(i, this.at(e)); });
        node.addEventListener("keydown", (e) => e.key === "Enter" && this.claim(i, this.centre(item)));
        this.layer.append(node);
        this.nodes.set(i, node);
        this.say(`A logo fragment appeared: tap it or press C to collect. ${this.count()}`);
      } else if (!on && node) {
        node.remove();
        this.nodes.delete(i);
      }
      if (node) Object.assign(node.style, { left: `${r.x - stage.left + item.box[0] * r.w}px`,
        top: `${r.y - stage.top + item.box[1] * r.h}px`, width: `${item.box[2] * r.w}px`, height: `${item.box[3] * r.h}px` });
    }
  }
  centre(item) {
    const p = item.polygon, n = p.length || 1;
    return [item.box[0] + (p.reduce((a, q) => a + q[0], 0) / n) * item.box[2],
      item.box[1] + (p.reduce((a, q) => a + q[1], 0) / n) * item.box[3]];
  }
  collectVisible() {
    const [i] = [...this.nodes.keys()];
    if (i !== undefined) this.claim(i, this.centre(this.items.get(i)));
    else this.say(`No fragment on screen now. ${this.count()}`);
  }
  claim(i, [x, y]) {
    if (!this.session) return;
    this.v.interacted("tap", { campaign: this.c.id });
    const nonce = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
    this.call("claims", { method: "POST", body: { session: this.session, fragment: i, t: this.video.currentTime, x, y,
      nonce } }).then((a) => {
      const node = this.nodes.get(a.fragment);
      node?.classList.add("got");
      this.show(a);
    }).catch((p) => p && p.code && this.say(`${p.detail || p.code}. ${this.count()}`));
  }
  count() { return `${(this.done || []).length} of ${this.needed} collected`; }
  show(state) {
    this.done = state.collected;
    this.needed = state.needed;
    this.prog.classList.toggle("won", !!state.entered);
    this.say(state.entered ? `You are in the prize draw! Entry ${state.entry_id}` : this.count());
    if (state.entered && !this.entered) this.v.emit("campaign-entry", { campaign: this.c.id, entry: state.entry_id });
    this.entered = state.entered;
  }
  say(text) { this.prog.textContent = text; }
  showRules() {
    this.card?.remove();
    const c = this.c, card = this.card = el("div", { class: "card rules", role: "dialog", "aria-label": "Prize draw rules" });
    card.append(el("h3", {}, "Prize draw"), el("p", {}, `Collect ${c.needed} of ${c.count} logo fragments.\n` +
      `Prizes: ${c.prizes.map((p) => `${p.quantity} × ${p.name}`).join(", ")}\nOdds: ${c.odds}\n` +
      `Free entry: ${c.alternative_entry}\n\n${c.rules}`));
    const close = el("button", { class: "close" }, "Close");
    close.addEventListener("click", () => card.remove());
    card.append(close);
    this.v.stage.append(card);
    close.focus();
  }
  stop() { super.stop(); clearInterval(this.timer); }
}

const MODES = { panorama: PanoramaMode, spin: SpinMode, video: VideoMode, image: ImageMode, campaign: CampaignMode };

// -------------------------------------------------------------------------------------------------- element

class MediaViewer extends HTMLElement {
  static get observedAttributes() { return ["src"]; }

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    this.onMessage = (event) => this.receive(event);
  }

  connectedCallback() {
    window.addEventListener("message", this.onMessage);
    if (!this.mode) this.load();
  }

  disconnectedCallback() {
    window.removeEventListener("message", this.onMessage);
    this.mode?.stop();
    this.reporter?.stop();
  }

  attributeChangedCallback(name, before, after) {
    if (name === "src" && before !== null && before !== after && this.isConnected) this.load();
  }

  get parentOrigins() {
    return (this.dataset.parentOrigins || "").split(/\s+/).filter(Boolean);
  }

  load() {
    this.mode?.stop();
    this.reporter?.stop();
    this.root.replaceChildren();
    const style = el("style");
    style.textContent = STYLE;
    this.stage = el("div", { class: "stage", tabindex: "0" });
    this.bar = el("div", { class: "bar" });
    this.root.append(style, this.stage);
    const src = this.getAttribute("src");
    if (!src) return this.fail("No media to show.");
    fetch(src, { credentials: "omit", mode: "cors" })
      .then((r) => r.json().then((body) => (r.ok ? body : Promise.reject(body))))
      .then((manifest) => this.start(manifest))
      .catch((problem) => this.fail((problem && problem.detail) || "This media could not be loaded."));
  }

  start(manifest) {
    this.manifest = manifest;
    const Mode = MODES[manifest.mode];
    if (!Mode) return this.fail("This kind of media cannot be shown here.");
    this.setAttribute("data-mode", manifest.mode);
    this.reporter = new EventReporter(manifest.events_url);
    this.reporter.add("view", { mode: manifest.mode });
    this.mode = new Mode(this, manifest[manifest.mode], manifest);
    this.mode.mount(this.stage);
    const hint = { panorama: "Drag or turn your phone to look around", spin: "Drag to turn the product",
      video: manifest.taps_url ? "Tap a product to shop it" : "", campaign: "Tap the logo fragments to win" }[manifest.mode];
    if (hint) {
      const note = el("div", { class: "hint" }, hint);
      this.stage.append(note);
      setTimeout(() => { note.style.opacity = "0"; }, 4000);
    }
    this.stage.append(this.bar);
    this.stage.addEventListener("keydown", (event) => {
      const action = this.keys && this.keys(event.key);
      if (action) { event.preventDefault(); action(); this.interacted("interact", { key: event.key }); }
    });
  }

  label(text) { return this.manifest?.title ? `${text}: ${this.manifest.title}` : text; }

  rendered() {
    if (this.hasAttribute("data-rendered")) return;
    this.setAttribute("data-rendered", "");
    this.emit("rendered", { mode: this.manifest.mode });
  }

  fail(message) {
    this.setAttribute("data-error", message);
    this.root.append(el("div", { class: "msg", role: "alert" }, message));
  }

  emit(name, detail) {
    // a DOM event on the element for the host page, and a message to the parent when in the iframe
    this.dispatchEvent(new CustomEvent(`media-viewer:${name}`, { detail, bubbles: true, composed: true }));
    if (window.parent !== window) {
      for (const origin of this.parentOrigins) {
        const ancestors = location.ancestorOrigins ? [...location.ancestorOrigins] : [document.referrer && new URL(document.referrer).origin];
        if (ancestors.includes(origin)) window.parent.postMessage({ type: `media-viewer:${name}`, detail }, origin);
      }
    }
  }

  receive(event) {
    // commands from the host page: only from the parent window, only from an allowed origin
    if (event.source !== window.parent || !this.parentOrigins.includes(event.origin)) return;
    const data = event.data || {};
    if (data.type === "media-viewer:command" && this.keys) {
      const action = this.keys({ left: "ArrowLeft", right: "ArrowRight", zoomIn: "+", zoomOut: "-" }[data.action]);
      if (action) action();
    }
  }

  interacted(type, data = {}) {
    this.reporter?.add(type, data);
  }

  addButton(text, label, onClick) {
    const button = el("button", { type: "button", "aria-label": label, title: label }, text);
    button.addEventListener("click", (event) => { event.stopPropagation(); onClick(); });
    this.bar.append(button);
    return button;
  }

  addDrag(target, onMove, onRelease = () => {}) {
    // pointer drag with a velocity estimate for inertia; pinch is handled by addZoom
    let last = null, vx = 0;
    const pointers = new Map();
    target.addEventListener("pointerdown", (event) => {
      pointers.set(event.pointerId, event);
      if (pointers.size === 1) { last = event; vx = 0; target.setPointerCapture?.(event.pointerId); }
    });
    target.addEventListener("pointermove", (event) => {
      if (!pointers.has(event.pointerId)) return;
      pointers.set(event.pointerId, event);
      if (pointers.size !== 1 || !last) return;
      const dx = event.clientX - last.clientX, dy = event.clientY - last.clientY;
      const dt = Math.max(1, event.timeStamp - last.timeStamp);
      vx = 0.8 * vx + 0.2 * (dx / dt);
      last = event;
      onMove(dx, dy);
    });
    const end = (event) => {
      pointers.delete(event.pointerId);
      if (!pointers.size && last) { onRelease(vx); last = null; }
    };
    target.addEventListener("pointerup", end);
    target.addEventListener("pointercancel", end);
    this.pointers = pointers;
  }

  addZoom(target, onZoom) {
    target.addEventListener("wheel", (event) => {
      event.preventDefault();
      onZoom(event.deltaY > 0 ? 1.08 : 1 / 1.08);
    }, { passive: false });
    let spread = null;
    target.addEventListener("pointermove", () => {
      const pts = [...(this.pointers?.values() || [])];
      if (pts.length !== 2) { spread = null; return; }
      const d = Math.hypot(pts[0].clientX - pts[1].clientX, pts[0].clientY - pts[1].clientY);
      if (spread) onZoom(spread / d);
      spread = d;
    });
  }

  enableMotion(onOrientation) {
    // iOS asks for permission, and only from a tap; elsewhere the events simply arrive
    const listen = () => {
      window.addEventListener("deviceorientation", (event) => {
        if (event.alpha == null && event.beta == null && event.gamma == null) return;
        onOrientation({ alpha: event.alpha || 0, beta: event.beta || 0, gamma: event.gamma || 0 });
      });
      this.interacted("gyro");
    };
    const ask = window.DeviceOrientationEvent && DeviceOrientationEvent.requestPermission;
    if (typeof ask === "function") ask.call(DeviceOrientationEvent).then((state) => state === "granted" && listen());
    else listen();
  }

  fullscreen() {
    this.interacted("fullscreen");
    if (document.fullscreenElement) document.exitFullscreen();
    else this.requestFullscreen?.().catch(() => {});
  }

  loadImage(url) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.crossOrigin = "anonymous";
      image.onload = () => resolve(image);
      image.onerror = reject;
      image.src = url;
    });
  }

  fitTexture(image, gl) {
    // textures larger than the GPU allows are scaled down on a canvas first
    const max = gl.getParameter(gl.MAX_TEXTURE_SIZE);
    if (image.naturalWidth <= max && image.naturalHeight <= max) return image;
    const scale = max / Math.max(image.naturalWidth, image.naturalHeight);
    const canvas = el("canvas");
    canvas.width = Math.floor(image.naturalWidth * scale);
    canvas.height = Math.floor(image.naturalHeight * scale);
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
    return canvas;
  }
}

if (!customElements.get("media-viewer")) customElements.define("media-viewer", MediaViewer);
export { MediaViewer };

// A bar chart of revenue per minute drawn on a <canvas>: no chart library,
// so nothing to fetch and nothing for the CSP to allow.

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

// niceScale rounds the axis up to 1, 2, 2.5 or 5 × 10^k and picks a tick
// count that divides it into round steps (0.2, 0.5, 0.5, 1 × 10^k).
export function niceScale(v) {
  if (!(v > 0)) return { max: 1, ticks: 4 };
  const p = 10 ** Math.floor(Math.log10(v));
  for (const [m, ticks] of [[1, 5], [2, 4], [2.5, 5], [5, 5], [10, 5]]) {
    if (v <= m * p) return { max: m * p, ticks };
  }
  return { max: 10 * p, ticks: 5 };
}

export class BarChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {(minor: number, compact: boolean) => string} format
   */
  constructor(canvas, format) {
    this.canvas = canvas;
    this.format = format;
    this.points = [];
    this.hover = -1;
    this.empty = 'No payments yet';
    new ResizeObserver(() => this.draw()).observe(canvas);
    canvas.addEventListener('pointermove', (e) => this.pointer(e));
    canvas.addEventListener('pointerleave', () => { this.hover = -1; this.draw(); });
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
  }

  // set takes [{minute, minor}], oldest first, the current minute last.
  set(points, format, empty) {
    this.points = points;
    if (format) this.format = format;
    if (empty) this.empty = empty;
    this.draw();
  }

  pointer(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const l = this.layout;
    if (!l) return;
    const i = Math.floor((x - l.left) / l.step);
    const h = i >= 0 && i < this.points.length ? i : -1;
    if (h !== this.hover) { this.hover = h; this.draw(); }
  }

  colors() {
    const cs = getComputedStyle(this.canvas);
    const v = (n) => cs.getPropertyValue(n).trim();
    return { bar: v('--chart-bar'), current: v('--chart-bar-current'), grid: v('--chart-grid'),
      text: v('--text-muted'), strong: v('--text'), tipBg: v('--tip-bg'), tipText: v('--tip-text') };
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = FONT;
    const col = this.colors();
    const pts = this.points;
    const { max, ticks } = niceScale(Math.max(0, ...pts.map((p) => p.minor)));
    const empty = pts.every((p) => p.minor <= 0);
    // An empty chart has no scale worth reading: gridlines only.
    const labels = Array.from({ length: ticks + 1 }, (_, i) => (empty ? '' : this.format((max * i) / ticks, true)));
    const left = Math.ceil(Math.max(...labels.map((s) => g.measureText(s).width))) + 14;
    const top = 10, bottom = 24, right = 8;
    const ph = h - top - bottom, pw = w - left - right;
    const n = Math.max(1, pts.length);
    const step = pw / n;
    this.layout = { left, step };

    // Grid and y labels.
    g.textBaseline = 'middle';
    g.textAlign = 'right';
    g.lineWidth = 1;
    for (let i = 0; i <= ticks; i++) {
      const y = Math.round(top + ph - (ph * i) / ticks) + 0.5;
      g.strokeStyle = col.grid;
      g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
      g.fillStyle = col.text;
      g.fillText(labels[i], left - 8, y);
    }

    // Bars; the current minute is still filling, so it is drawn lighter.
    const gap = Math.min(4, step * 0.25);
    pts.forEach((p, i) => {
      if (p.minor <= 0) return;
      const bh = Math.max(2, (p.minor / max) * ph);
      const x = left + i * step + gap / 2;
      g.fillStyle = i === pts.length - 1 ? col.current : col.bar;
      g.globalAlpha = this.hover === -1 || this.hover === i ? 1 : 0.55;
      roundRect(g, x, top + ph - bh, step - gap, bh, Math.min(3, (step - gap) / 2));
      g.fill();
      g.globalAlpha = 1;
    });

    // x labels every 5 minutes, and "now" under the current minute.
    g.textAlign = 'center';
    g.textBaseline = 'top';
    g.fillStyle = col.text;
    pts.forEach((p, i) => {
      const last = i === pts.length - 1;
      if (!last && (p.minute % 5 !== 0 || i > pts.length - 4)) return;
      const label = last ? 'now' : hhmm(p.minute);
      g.fillText(label, left + i * step + step / 2, top + ph + 7);
    });

    if (empty) {
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillStyle = col.text;
      g.fillText(this.empty, left + pw / 2, top + ph / 2);
    }

    if (this.hover >= 0 && pts[this.hover]) {
      const p = pts[this.hover];
      const text = `${hhmm(p.minute)}  ${this.format(p.minor, false)}`;
      const tw = g.measureText(text).width + 16;
      const cx = left + this.hover * step + step / 2;
      const x = Math.min(Math.max(left, cx - tw / 2), w - right - tw);
      g.fillStyle = col.tipBg;
      roundRect(g, x, top, tw, 24, 4);
      g.fill();
      g.fillStyle = col.tipText;
      g.textAlign = 'left';
      g.textBaseline = 'middle';
      g.fillText(text, x + 8, top + 12);
    }
  }
}

function hhmm(minute) {
  const d = new Date(minute * 60000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  if (g.roundRect) { g.roundRect(x, y, w, h, [r, r, 0, 0]); return; }
  g.rect(x, y, w, h);
}

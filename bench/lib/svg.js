// A small SVG bar-chart writer: one chart per scenario, made of panels (one
// per unit or kind of figure), each a set of labelled horizontal bars with
// their values and, where the issue sets one, a target line. No dependencies;
// the output is plain SVG 1.1 that browsers and GitHub render.

const WIDTH = 900;
const CHAR_W = 6.8; // average advance of a 12px sans-serif character
const ROW_H = 24;
const BAR_H = 16;
const PANEL_HEAD = 40;
const PANEL_GAP = 18;
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

const COLORS = { met: '#2e8b57', missed: '#d9822b', none: '#4a78b5', failed: '#c0392b', target: '#b22222', grid: '#dddddd', text: '#222222' };

const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/** Round numbers for a linear axis from 0 to at least max. */
function linearTicks(max) {
  if (!(max > 0)) return { ticks: [0, 1], top: 1 };
  const rough = max / 4;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= rough);
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { ticks, top };
}

function shortNumber(v) {
  const abs = Math.abs(v);
  if (abs >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (abs >= 1) return `${+v.toPrecision(3)}`;
  if (abs === 0) return '0';
  return `${+v.toPrecision(2)}`;
}

/**
 * Chooses the scale for a panel: linear from zero unless the values span
 * more than two decades (micro-benchmarks over 64 B and 64 KiB), then
 * logarithmic so that the small bars stay visible.
 */
function scaleFor(values, plotWidth) {
  const positive = values.filter((v) => v > 0);
  const max = Math.max(...positive, 0);
  const min = Math.min(...positive);
  if (positive.length >= 2 && max / min > 100) {
    const lo = 10 ** Math.floor(Math.log10(min));
    const hi = 10 ** Math.ceil(Math.log10(max));
    const ticks = [];
    for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push(v);
    const x = (v) => (v <= lo ? 0 : (Math.log10(v / lo) / Math.log10(hi / lo)) * plotWidth);
    return { x, ticks, log: true };
  }
  const { ticks, top } = linearTicks(max);
  return { x: (v) => (Math.max(0, v) / top) * plotWidth, ticks, log: false };
}

/** Text for a figure's value, e.g. "12.3 Gbit/s". */
function valueText(bar, unit) {
  if (bar.value === null || bar.value === undefined) return 'failed';
  return `${bar.display ?? shortNumber(bar.value)} ${unit}`.trim();
}

/**
 * chart = { title, subtitle?, panels: [{ title, unit, bars: [{ label, value,
 * target?: { op: '>=' | '<=', value }, met?: boolean, note? }] }] }
 * Returns the SVG document as a string.
 */
export function barChart(chart) {
  const parts = [];
  let y = 58;
  // The label column fits the longest label (within reason).
  const longest = Math.max(...chart.panels.flatMap((p) => p.bars.map((b) => [...b.label].length)), 10);
  const labelWidth = Math.min(420, Math.ceil(longest * CHAR_W) + 20);
  // Room right of a full-length bar for the longest value text.
  const longestValue = Math.max(...chart.panels.flatMap((p) => p.bars.map((b) => {
    const text = `${valueText(b, p.unit)}${b.note ? ` (${b.note})` : ''}`;
    return [...text].length;
  })), 8);
  const valueWidth = Math.min(320, Math.ceil(longestValue * CHAR_W) + 12);
  const plotWidth = WIDTH - labelWidth - valueWidth - 10;
  for (const panel of chart.panels) {
    const values = panel.bars.flatMap((b) => [b.value ?? 0, b.target?.value ?? 0]);
    const scale = scaleFor(values, plotWidth);
    const rows = panel.bars.length;
    const plotTop = y + PANEL_HEAD;
    const plotH = rows * ROW_H;
    const x0 = labelWidth;
    parts.push(`<text x="10" y="${y + 18}" font-size="14" font-weight="bold" fill="${COLORS.text}">${esc(panel.title)}` +
      `<tspan dx="8" font-weight="normal" fill="#666">${esc(panel.unit)}${scale.log ? ', log scale' : ''}</tspan></text>`);
    // Grid and axis labels.
    for (const t of scale.ticks) {
      const tx = x0 + scale.x(t);
      parts.push(`<line x1="${tx.toFixed(1)}" y1="${plotTop - 4}" x2="${tx.toFixed(1)}" y2="${plotTop + plotH}" stroke="${COLORS.grid}"/>`);
      parts.push(`<text x="${tx.toFixed(1)}" y="${plotTop - 8}" font-size="10" text-anchor="middle" fill="#777">${esc(shortNumber(t))}</text>`);
    }
    panel.bars.forEach((bar, i) => {
      const rowY = plotTop + i * ROW_H;
      const barY = rowY + (ROW_H - BAR_H) / 2;
      const failed = bar.value === null || bar.value === undefined;
      const color = failed ? COLORS.failed : bar.target ? (bar.met ? COLORS.met : COLORS.missed) : COLORS.none;
      parts.push(`<text x="${x0 - 8}" y="${barY + BAR_H - 4}" font-size="12" text-anchor="end" fill="${COLORS.text}">${esc(bar.label)}</text>`);
      const w = failed ? 0 : Math.max(1, scale.x(bar.value));
      if (!failed) {
        parts.push(`<rect x="${x0}" y="${barY}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"><title>${esc(`${bar.label}: ${valueText(bar, panel.unit)}`)}</title></rect>`);
      }
      let text = valueText(bar, panel.unit);
      if (bar.note) text += ` (${bar.note})`;
      // Right of the bar; past the target line instead when the text would cross it.
      const lineX = bar.target ? scale.x(bar.target.value) : -1;
      const crosses = lineX > w && w + 6 + [...text].length * CHAR_W > lineX - 2;
      const tx = x0 + (crosses ? lineX : w);
      parts.push(`<text x="${(tx + 6).toFixed(1)}" y="${barY + BAR_H - 4}" font-size="12" fill="${failed ? COLORS.failed : COLORS.text}">${esc(text)}</text>`);
      if (bar.target) {
        const tx = x0 + scale.x(bar.target.value);
        parts.push(`<line x1="${tx.toFixed(1)}" y1="${rowY + 1}" x2="${tx.toFixed(1)}" y2="${rowY + ROW_H - 1}" stroke="${COLORS.target}" stroke-width="2" stroke-dasharray="4 2"><title>target ${esc(bar.target.op)} ${esc(shortNumber(bar.target.value))} ${esc(panel.unit)}</title></line>`);
      }
    });
    // Target captions under the panel, so the dashed lines need no legend hunt.
    const op = (o) => (o === '>=' ? '≥' : o === '<=' ? '≤' : o);
    const targets = [...new Set(panel.bars.filter((b) => b.target).map((b) => `${op(b.target.op)} ${shortNumber(b.target.value)}`))];
    y = plotTop + plotH;
    if (targets.length > 0) {
      parts.push(`<text x="${x0}" y="${y + 14}" font-size="10" fill="${COLORS.target}">dashed line: target ${esc(targets.join(', '))} ${esc(panel.unit)}</text>`);
      y += 14;
    }
    y += PANEL_GAP;
  }
  const legendY = y + 6;
  const legend = [['met', 'target met'], ['missed', 'target not met'], ['none', 'no target'], ['failed', 'failed']]
    .map(([k, text], i) => `<rect x="${10 + i * 150}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[k]}"/>` +
      `<text x="${28 + i * 150}" y="${legendY}" font-size="11" fill="${COLORS.text}">${text}</text>`).join('');
  const height = legendY + 16;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="18" font-weight="bold" fill="${COLORS.text}">${esc(chart.title)}</text>
<text x="10" y="44" font-size="11" fill="#555">${esc(chart.subtitle ?? '')}</text>
${parts.join('\n')}
${legend}
</svg>
`;
}

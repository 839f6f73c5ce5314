#include "edgefleet/stability_report.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "edgefleet/encode.h"
#include "edgefleet/resize.h"

namespace edgefleet {
namespace {

std::string base64(const std::vector<std::uint8_t>& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::uint32_t chunk = (bytes[i] << 16) | (i + 1 < bytes.size() ? bytes[i + 1] << 8 : 0) |
                                (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

// Embedded in a <script> element: "</" would end it early.
std::string script_safe(std::string text) {
  for (std::size_t at = text.find("</"); at != std::string::npos; at = text.find("</", at + 3)) text.replace(at, 2, "<\\/");
  return text;
}

// The page's drawing code: plain DOM and SVG, no libraries. Percentages are shown with two
// decimals everywhere (the report test compares them with summary.json).
const char* kScript = R"JS(
(function () {
  const S = JSON.parse(document.getElementById('summary').textContent);
  const X = JSON.parse(document.getElementById('extras').textContent);
  const pct = v => (100 * v).toFixed(2);
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(tag === 'svg' || attrs.svg ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag);
    for (const [k, v] of Object.entries(attrs)) if (k !== 'svg') e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const className = c => (c >= 0 && c < X.class_names.length ? X.class_names[c] : (c < 0 ? 'failed' : 'class ' + c));
  const k = Object.keys(S).find(key => key.startsWith('instability_top')).slice('instability_top'.length);
  const $ = id => document.getElementById(id);

  // Headline figures.
  const head = $('headline');
  const figures = [['images', 'images', S.images, v => String(v)],
                   ['instability', 'instability %', S.instability, pct],
                   ['instability_top' + k, 'top-' + k + ' instability %', S['instability_top' + k], pct],
                   ['disagreement', 'any disagreement %', S.disagreement, pct],
                   ['accuracy_drop.mean', 'accuracy drop mean (points)', S.accuracy_drop.mean, pct],
                   ['accuracy_drop.max', 'accuracy drop max (points)', S.accuracy_drop.max, pct]];
  for (const [key, label, value, format] of figures) {
    const box = el('div', {class: 'figure'});
    box.appendChild(el('div', {class: 'value', 'data-metric': key}, format(value)));
    box.appendChild(el('div', {class: 'label'}, label));
    head.appendChild(box);
  }
  $('reference').textContent = S.reference;

  // Horizontal bars: one per item, value in [0, 1] (percent labels).
  function bars(target, items, metric) {
    const rowH = 22, labelW = 260, barW = 420;
    const svg = el('svg', {width: labelW + barW + 80, height: rowH * items.length + 10});
    const top = Math.max(1e-9, ...items.map(i => i.value));
    items.forEach((item, n) => {
      const y = 5 + n * rowH;
      const label = item.name.length > 42 ? item.name.slice(0, 40) + '\u2026' : item.name;
      svg.appendChild(el('text', {svg: 1, x: labelW - 6, y: y + 15, 'text-anchor': 'end'}, label));
      svg.appendChild(el('rect', {svg: 1, x: labelW, y: y + 3, height: rowH - 6, width: Math.max(1, barW * item.value / top),
                                  class: 'bar', 'data-bar': metric}));
      svg.appendChild(el('text', {svg: 1, x: labelW + 6 + barW * item.value / top, y: y + 15,
                                  'data-value': metric + ':' + item.name}, pct(item.value)));
    });
    $(target).appendChild(svg);
  }
  bars('accuracy', S.environments.map(e => ({name: e.name, value: e.accuracy})), 'accuracy');
  if (S.per_source) {
    bars('sources', S.per_source.map(s => ({name: s.source, value: s.instability})), 'source-instability');
    const table = el('table', {});
    table.appendChild(el('tr', {})).append(...['source', 'environments', 'instability %', 'top-' + k + ' %',
                                                'drop mean', 'drop max'].map(h => el('th', {}, h)));
    for (const s of S.per_source) {
      const row = el('tr', {'data-source': s.source});
      row.append(el('td', {}, s.source), el('td', {}, String(s.environments.length)),
                 el('td', {'data-metric': 'per_source.' + s.source + '.instability'}, pct(s.instability)),
                 el('td', {}, pct(s['instability_top' + k])), el('td', {}, pct(s.accuracy_drop.mean)),
                 el('td', {}, pct(s.accuracy_drop.max)));
      table.appendChild(row);
    }
    $('sources').appendChild(table);
  } else {
    $('sources').appendChild(el('p', {}, 'One environment set: run with --axis to split instability by source.'));
  }

  // Pairwise disagreement heatmap.
  const n = S.environments.length, cell = Math.max(10, Math.min(34, Math.floor(520 / n))), margin = 200;
  const heat = el('svg', {width: margin + n * cell + 10, height: margin + n * cell + 10});
  const worst = Math.max(1e-9, ...S.pairwise_disagreement.flat());
  S.environments.forEach((e, i) => {
    heat.appendChild(el('text', {svg: 1, x: margin - 6, y: margin + i * cell + cell / 2 + 4, 'text-anchor': 'end'}, e.name));
    heat.appendChild(el('text', {svg: 1, x: 0, y: 0, transform: `translate(${margin + i * cell + cell / 2 + 4},${margin - 6}) rotate(-60)`}, e.name));
    S.environments.forEach((f, j) => {
      const v = S.pairwise_disagreement[i][j];
      const r = el('rect', {svg: 1, x: margin + j * cell, y: margin + i * cell, width: cell - 1, height: cell - 1,
                            fill: `rgba(200, 40, 40, ${(0.05 + 0.95 * v / worst).toFixed(3)})`, 'data-cell': i + ',' + j});
      r.appendChild(el('title', {svg: 1}, `${e.name} vs ${f.name}: ${pct(v)}% disagree`));
      heat.appendChild(r);
    });
  });
  $('heatmap').appendChild(heat);

  // Confidence of stable vs unstable inputs (paper Fig. 4).
  const c = S.confidence, bins = c.stable_histogram.length;
  const share = h => { const t = h.reduce((a, b) => a + b, 0) || 1; return h.map(v => v / t); };
  const st = share(c.stable_histogram), un = share(c.unstable_histogram);
  const W = 40, H = 160, hist = el('svg', {width: bins * W + 60, height: H + 40});
  const peak = Math.max(1e-9, ...st, ...un);
  for (let b = 0; b < bins; ++b) {
    hist.appendChild(el('rect', {svg: 1, x: 30 + b * W, y: H - H * st[b] / peak, width: W / 2 - 2, height: H * st[b] / peak, class: 'stable'}));
    hist.appendChild(el('rect', {svg: 1, x: 30 + b * W + W / 2, y: H - H * un[b] / peak, width: W / 2 - 2, height: H * un[b] / peak, class: 'unstable'}));
    hist.appendChild(el('text', {svg: 1, x: 30 + b * W, y: H + 16}, (b / bins).toFixed(1)));
  }
  $('confidence').appendChild(hist);
  $('confidence').appendChild(el('p', {}, `mean top-1 confidence: stable ${c.stable_mean.toFixed(3)}, unstable ${c.unstable_mean.toFixed(3)}`));

  // Per class: the most unstable classes.
  const classes = S.per_class.slice().sort((a, b) => b.instability - a.instability).slice(0, 15);
  bars('classes', classes.map(p => ({name: className(p.class) + ' (' + p.images + ')', value: p.instability})), 'class-instability');

  // Explanations (edgefleet stability explain), which the gallery links to.
  const explained = {};
  (S.explanations || []).forEach((x, i) => {
    explained[x.input] = 'explain-' + i;
    const box = el('div', {class: 'explanation', id: 'explain-' + i});
    box.appendChild(el('h3', {}, x.input.split('/').slice(-2).join('/')));
    box.appendChild(el('p', {}, `${x.from} says ${className(x.from_top1)}, ${x.to} says ${className(x.to_top1)}; ` +
                                `${x.changes.length} differences, ${x.evaluated.length} environments tried.`));
    box.appendChild(el('p', {}, 'The smallest set of changes that flips it:'));
    const culprit = el('ul', {class: 'culprit'});
    for (const c of x.culprit) culprit.appendChild(el('li', {}, c));
    box.appendChild(culprit);
    if (x.activations) {
      const a = x.activations;
      box.appendChild(el('p', {class: 'parted'}, a.parted_at === null
          ? `Inside the model the two inputs never fall below cosine ${a.min_cosine}.`
          : `Inside the model the two inputs part at ${a.parted_at} (first cosine below ${a.min_cosine}).`));
      const details = el('details', {});
      details.appendChild(el('summary', {}, 'layer by layer'));
      const table = el('table', {});
      table.appendChild(el('tr', {})).append(el('th', {}, 'layer'), el('th', {}, 'cosine'), el('th', {}, 'relative error'));
      for (const l of a.layers) {
        const row = el('tr', {class: l.layer === a.parted_at ? 'wrong' : ''});
        row.append(el('td', {}, l.layer), el('td', {}, l.cosine.toFixed(4)),
                   el('td', {}, l.relative_error === null ? 'inf' : l.relative_error.toFixed(4)));
        table.appendChild(row);
      }
      details.appendChild(table);
      box.appendChild(details);
    } else if (x.activations_error) {
      box.appendChild(el('p', {}, x.activations_error));
    }
    $('explanations').appendChild(box);
  });
  if (!(S.explanations || []).length) $('explanations').appendChild(el('p', {}, 'None yet: run edgefleet stability explain on this folder.'));

  // Gallery of the most unstable inputs.
  for (const item of S.most_unstable) {
    const card = el('div', {class: 'item', 'data-input': item.input});
    if (explained[item.input]) card.appendChild(el('a', {href: '#' + explained[item.input], class: 'why'}, 'why it flips'));
    if (X.thumbnails[item.input]) card.appendChild(el('img', {src: X.thumbnails[item.input], alt: item.input}));
    card.appendChild(el('div', {class: 'name'}, item.input.split('/').slice(-2).join('/')));
    card.appendChild(el('div', {class: 'truth'}, 'true: ' + className(item.label)));
    const list = el('table', {});
    for (const [env, p] of Object.entries(item.predictions)) {
      const row = el('tr', {class: p.class === item.label ? 'right' : 'wrong'});
      row.append(el('td', {}, env), el('td', {}, className(p.class)), el('td', {}, pct(p.probability)));
      list.appendChild(row);
    }
    card.appendChild(list);
    $('gallery').appendChild(card);
  }
  document.body.setAttribute('data-rendered', 'ok');
})();
)JS";

const char* kStyle = R"CSS(
body { font-family: sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
#headline { display: flex; gap: 1.5em; flex-wrap: wrap; }
.figure { background: #f4f4f6; padding: 0.8em 1.2em; border-radius: 6px; }
.figure .value { font-size: 1.6em; font-weight: bold; } .figure .label { color: #666; font-size: 0.85em; }
.bar { fill: #4a78b5; } .stable { fill: #4a9b5b; } .unstable { fill: #c84a3c; }
svg text { font-size: 12px; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 2px 8px; text-align: left; font-size: 0.9em; }
#gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.item { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em; width: 300px; }
.item img { max-width: 112px; image-rendering: pixelated; } .item .name { font-size: 0.8em; color: #666; }
.explanation { border-top: 1px solid #eee; } .explanation h3 { font-size: 1em; }
tr.right td { color: #2a7a3a; } tr.wrong td { color: #b03a2e; }
)CSS";

}  // namespace

std::string stability_report_html(const nlohmann::json& summary, const StabilityReportExtras& extras) {
  const nlohmann::json extra = {{"class_names", extras.class_names}, {"thumbnails", extras.thumbnails}};
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>edgefleet stability report</title>\n<style>";
  html += kStyle;
  html += "</style></head>\n<body>\n<h1>Instability report</h1>\n"
          "<p>Unstable input: at least one environment right and one wrong (instability paper, section 2.2). "
          "Accuracy drops are measured from <b id=\"reference\"></b>.</p>\n"
          "<div id=\"headline\"></div>\n"
          "<h2>Instability per source</h2><div id=\"sources\"></div>\n"
          "<h2>Top-1 accuracy per environment (%)</h2><div id=\"accuracy\"></div>\n"
          "<h2>Pairwise disagreement</h2><div id=\"heatmap\"></div>\n"
          "<h2>Confidence of stable (green) vs unstable (red) inputs</h2><div id=\"confidence\"></div>\n"
          "<h2>Most unstable classes (%)</h2><div id=\"classes\"></div>\n"
          "<h2>Most unstable inputs</h2><div id=\"gallery\"></div>\n"
          "<h2>Why they flip</h2><div id=\"explanations\"></div>\n"
          "<script id=\"summary\" type=\"application/json\">";
  html += script_safe(summary.dump());
  html += "</script>\n<script id=\"extras\" type=\"application/json\">";
  html += script_safe(extra.dump());
  html += "</script>\n<script>";
  html += kScript;
  html += "</script>\n</body></html>\n";
  return html;
}

Expected<std::string> thumbnail_data_uri(const Image& image, int size) {
  const Image* source = &image;
  Expected<Image> scaled = Image{};
  if (std::max(image.width, image.height) > size) {
    ResizeOptions options;
    options.method = "area";
    options.size.width = std::max(1, image.width * size / std::max(image.width, image.height));
    options.size.height = std::max(1, image.height * size / std::max(image.width, image.height));
    scaled = resize_image(image, options);
    if (!scaled) return scaled.status();
    source = &*scaled;
  }
  EncodeOptions png;
  png.format = ImageFormat::kPng;
  auto bytes = encode_image(*source, png);
  if (!bytes) return bytes.status();
  return "data:image/png;base64," + base64(*bytes);
}

}  // namespace edgefleet

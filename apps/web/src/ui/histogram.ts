const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** Bins of a histogram: [start, end) and a count. */
export function histogramBins(
  values: readonly number[],
  binCount: number,
  upper: number,
): { start: number; end: number; count: number }[] {
  const width = Math.max(1, Math.ceil(upper / binCount));
  const bins = Array.from({ length: binCount }, (_, i) => ({
    start: i * width,
    end: (i + 1) * width,
    count: 0,
  }));
  for (const value of values) bins[Math.min(binCount - 1, Math.floor(value / width))].count++;
  return bins;
}

/**
 * Token lengths of the examples as an SVG histogram, with the cutoff_len marked: bars right of
 * the line are examples that will be cut. Each bar carries its range and count as a title.
 */
export function tokenHistogram(lengths: readonly number[], cutoffLen: number): SVGSVGElement {
  const width = 480;
  const height = 160;
  const margin = { left: 40, right: 10, top: 10, bottom: 28 };
  const longest = Math.max(1, ...lengths);
  const upper = Math.max(longest, cutoffLen) + 1;
  const bins = histogramBins(lengths, 30, upper);
  const top = Math.max(1, ...bins.map((bin) => bin.count));
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const x = (tokens: number) => margin.left + (tokens / bins[bins.length - 1].end) * plotWidth;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'histogram',
    role: 'img',
    'aria-label': `Token lengths of ${lengths.length} examples; longest ${longest}; ${lengths.filter((l) => l > cutoffLen).length} over cutoff_len ${cutoffLen}`,
  });
  for (const bin of bins) {
    if (bin.count === 0) continue;
    const barHeight = (bin.count / top) * plotHeight;
    const rect = svg('rect', {
      x: x(bin.start) + 0.5,
      y: margin.top + plotHeight - barHeight,
      width: Math.max(1, x(bin.end) - x(bin.start) - 1),
      height: barHeight,
      class: bin.start >= cutoffLen ? 'bar bar-cut' : 'bar',
    });
    const title = svg('title', {});
    title.textContent = `${bin.start}–${bin.end - 1} tokens: ${bin.count} examples`;
    rect.append(title);
    root.append(rect);
  }
  root.append(
    svg('line', {
      x1: margin.left,
      x2: width - margin.right,
      y1: margin.top + plotHeight,
      y2: margin.top + plotHeight,
      class: 'axis',
    }),
  );
  const cutoffX = x(cutoffLen);
  root.append(
    svg('line', { x1: cutoffX, x2: cutoffX, y1: margin.top, y2: margin.top + plotHeight, class: 'cutoff' }),
  );
  // The label sits on the side of the line with room, so it is never cut by the edge.
  const labelOnLeft = cutoffX > margin.left + plotWidth / 2;
  const cutoffLabel = svg('text', {
    x: labelOnLeft ? cutoffX - 4 : cutoffX + 4,
    y: margin.top + 12,
    'text-anchor': labelOnLeft ? 'end' : 'start',
    class: 'cutoff-label',
  });
  cutoffLabel.textContent = `cutoff_len ${cutoffLen}`;
  root.append(cutoffLabel);
  const axisEnd = bins[bins.length - 1].end;
  const anchors = ['start', 'middle', 'end'];
  for (const [i, tokens] of [0, Math.round(axisEnd / 2), axisEnd].entries()) {
    const label = svg('text', { x: x(tokens), y: height - 8, 'text-anchor': anchors[i], class: 'tick' });
    label.textContent = String(tokens);
    root.append(label);
  }
  const countLabel = svg('text', {
    x: margin.left - 6,
    y: margin.top + 8,
    'text-anchor': 'end',
    class: 'tick',
  });
  countLabel.textContent = String(top);
  root.append(countLabel);
  return root;
}

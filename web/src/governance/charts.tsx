// Small SVG charts: attributes only (no inline styles), so they run under the page's strict CSP.

export interface Bar {
  label: string;
  value: number;
}

/** Horizontal bars, each labelled with its value; the numbers are also in the table beside it. */
export function BarChart({ bars, title, width = 360 }: { bars: Bar[]; title: string; width?: number }) {
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const row = 22;
  const labelWidth = 90;
  const span = width - labelWidth - 50;
  return (
    <svg className="chart" role="img" aria-label={title} width={width} height={bars.length * row + 4} viewBox={`0 0 ${width} ${bars.length * row + 4}`}>
      <title>{title}</title>
      {bars.map((bar, index) => {
        const y = index * row + 2;
        const length = (bar.value / max) * span;
        return (
          <g key={bar.label}>
            <text x={labelWidth - 6} y={y + 15} textAnchor="end" className="chart-label">
              {bar.label}
            </text>
            <rect x={labelWidth} y={y + 3} width={Math.max(length, bar.value > 0 ? 2 : 0)} height={row - 6} className="chart-bar" />
            <text x={labelWidth + length + 6} y={y + 15} className="chart-label">
              {bar.value}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

export interface Point {
  key: string;
  label: string;
  value: number;
}

/** A line over points in order, on a 0..100 scale (DQ scores and percentages). */
export function LineChart({ points, title, width = 640, height = 180 }: { points: Point[]; title: string; width?: number; height?: number }) {
  const pad = 30;
  const x = (index: number) => pad + (points.length <= 1 ? (width - 2 * pad) / 2 : (index * (width - 2 * pad)) / (points.length - 1));
  const y = (value: number) => height - pad - (Math.min(Math.max(value, 0), 100) / 100) * (height - 2 * pad);
  const path = points.map((point, index) => `${index === 0 ? "M" : "L"}${x(index).toFixed(1)},${y(point.value).toFixed(1)}`).join(" ");
  return (
    <svg className="chart" role="img" aria-label={title} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      <title>{title}</title>
      {[0, 50, 100].map((tick) => (
        <g key={tick}>
          <line x1={pad} x2={width - pad} y1={y(tick)} y2={y(tick)} className="chart-grid" />
          <text x={pad - 4} y={y(tick) + 4} textAnchor="end" className="chart-label">
            {tick}
          </text>
        </g>
      ))}
      {points.length > 0 && <path d={path} className="chart-line" fill="none" />}
      {points.map((point, index) => (
        <circle key={point.key} cx={x(index)} cy={y(point.value)} r={4} className="chart-dot">
          <title>{`${point.label}: ${point.value}`}</title>
        </circle>
      ))}
    </svg>
  );
}

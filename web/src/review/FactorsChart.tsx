import { contribution } from "./review";

interface Factor {
  feature?: unknown;
  description?: unknown;
  value?: unknown;
  contribution?: unknown;
}

const WIDTH = 160;
const HEIGHT = 14;

/** The model's top SHAP factors as a diverging bar chart: bars to the left make the loan safer
 * (negative log-odds of default), to the right riskier, all on one scale. Each row also says it in
 * words (the factor's sentence, the value shown and the contribution), so the chart reads without
 * the bars too. SVG attributes, not inline styles: the page's CSP allows no inline style. */
export function FactorsChart({ positive, negative }: { positive: Factor[]; negative: Factor[] }) {
  const rows = [
    ...positive.map((factor) => ({ factor, side: "safer" as const })),
    ...negative.map((factor) => ({ factor, side: "riskier" as const })),
  ];
  if (rows.length === 0) return <p className="empty">The model gave no factors for this loan.</p>;
  const largest = Math.max(...rows.map(({ factor }) => Math.abs(contribution(factor.contribution))), 1e-9);
  const half = WIDTH / 2;
  return (
    <figure className="factors" aria-labelledby="factors-caption">
      <figcaption id="factors-caption">
        What moved the score: bars left of the line make the loan safer, right of it riskier (SHAP, log-odds of default).
      </figcaption>
      <table>
        <thead>
          <tr>
            <th scope="col">Factor</th>
            <th scope="col">Value</th>
            <th scope="col">Effect</th>
            <th scope="col">
              <span className="visually-hidden">Chart</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ factor, side }, index) => {
            const amount = contribution(factor.contribution);
            const length = (Math.abs(amount) / largest) * half;
            const x = amount < 0 ? half - length : half;
            return (
              <tr key={`${side}-${index}`} className={`factor-${side}`}>
                <td>{String(factor.description ?? factor.feature ?? "")}</td>
                <td>{String(factor.value ?? "—")}</td>
                <td className="num">
                  {side} ({String(factor.contribution ?? "")})
                </td>
                <td>
                  <svg width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} aria-hidden="true" focusable="false">
                    <rect x={x} y={2} width={Math.max(length, 1)} height={HEIGHT - 4} className={`bar-${side}`} />
                    <line x1={half} x2={half} y1={0} y2={HEIGHT} className="axis" />
                  </svg>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </figure>
  );
}

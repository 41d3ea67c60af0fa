// Reading Herald's /metrics text in tests. Every series carries a `node` label (the process it
// comes from); a sample is named here without it: `herald_messages_accepted_total`,
// `herald_deliveries_total{status="delivered"}`.

/** The value of the sample `name` (without its node label), or undefined when there is none. */
export function metricSample (text: string, name: string): number | undefined {
  const line = text.split('\n').map(withoutNodeLabel).find(l => l.startsWith(name + ' '))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

function withoutNodeLabel (line: string): string {
  return line.replace(/\{node="[^"]*"\}/, '').replace(/node="[^"]*",?/, '').replace(/,\}/, '}')
}

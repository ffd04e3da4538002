// Helpers of the server tests: reading /metrics and waiting for a condition.

/** The /metrics text of a server. */
export async function scrape(base: string): Promise<string> {
  const r = await fetch(`${base}/metrics`);
  if (!r.ok) throw new Error(`/metrics: HTTP ${r.status}`);
  return r.text();
}

/** The value of one sample (`name` or `name{labels}` exactly as rendered); 0 when absent. */
export function metricValue(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

/** Polls `check` until it holds (the test's timeout is the hang guard). */
export async function waitFor(check: () => Promise<boolean> | boolean, everyMs = 25): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, everyMs));
}

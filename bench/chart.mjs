// The chart (bench/chart.svg, bench/chart-channel.svg) and number format
// shared by bench/run.mjs and bench/channel.mjs.

export const fmt = (value) => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value >= 0.1 ? value.toFixed(2) : value.toFixed(3))

/** Horizontal bars per workload, one colour per implementation, each group scaled to its own maximum. */
export function chart(groups) {
  const palette = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2']
  const colour = new Map()
  const width = 860
  const label = 280
  const bar = 18
  let y = 30
  const parts = []
  for (const group of groups) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${escape(group.title)}${group.lowerIsBetter ? ' (lower is better)' : ''}</text>`)
    y += 10
    const max = Math.max(...group.rows.map((r) => r.median))
    for (const row of group.rows) {
      if (!colour.has(row.name)) colour.set(row.name, palette[colour.size % palette.length])
      const w = Math.max(1, ((width - label - 90) * row.median) / max)
      parts.push(`<text x="10" y="${y + 13}">${escape(row.name)}</text>`)
      parts.push(`<rect x="${label}" y="${y}" width="${w.toFixed(1)}" height="${bar - 4}" fill="${colour.get(row.name)}"/>`)
      parts.push(`<text x="${label + w + 6}" y="${y + 13}">${fmt(row.median)} ${escape(group.unit)}</text>`)
      y += bar
    }
    y += 22
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
}

function escape(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

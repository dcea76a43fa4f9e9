// The live cluster page: follows the gateway's SSE stream (/v1/switchyard/live, one snapshot a second)
// and redraws the cards, the expert-load heatmap, the timeline and the workers table. Plain browser
// JavaScript, no build step; Chart.js and its matrix plugin are loaded by page.html from the gateway.
const HISTORY = 120;
const $ = (id) => document.getElementById(id);
const number = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: digits }) : '–';
const si = (n) => {
  if (!Number.isFinite(n) || n === 0) return '–';
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(Math.abs(n)) / 3));
  return `${(n / 1000 ** i).toFixed(2)}${units[i]}`;
};

let heatmap;
let heatmapShape = '';
const timeline = new Chart($('timeline'), {
  type: 'line',
  data: {
    labels: [],
    datasets: [
      { label: 'tokens / s', data: [], yAxisID: 'tps', borderColor: '#1a73e8', pointRadius: 0 },
      { label: 'running', data: [], yAxisID: 'requests', borderColor: '#137333', pointRadius: 0, stepped: true },
      { label: 'waiting', data: [], yAxisID: 'requests', borderColor: '#e37400', pointRadius: 0, stepped: true },
    ],
  },
  options: {
    animation: false,
    maintainAspectRatio: false,
    scales: {
      x: { ticks: { maxTicksLimit: 6 } },
      tps: { position: 'left', beginAtZero: true, title: { display: true, text: 'tokens / s' } },
      requests: {
        position: 'right',
        beginAtZero: true,
        grid: { drawOnChartArea: false },
        title: { display: true, text: 'requests' },
      },
    },
  },
});

/** Ticks at the cells' centres 0 … n-1 (the axis runs from -0.5 to n-0.5); a subset when n is large. */
function integerTicks(n) {
  const step = Math.max(1, Math.ceil(n / 32));
  return (axis) => {
    axis.ticks = Array.from({ length: Math.ceil(n / step) }, (_, i) => ({ value: i * step }));
  };
}

function drawHeatmap(load) {
  const layers = load.length;
  const experts = load[0]?.length ?? 0;
  const points = load.flatMap((row, y) => row.map((v, x) => ({ x, y, v })));
  const max = Math.max(1, ...points.map((p) => p.v));
  const shape = `${layers}x${experts}`;
  if (heatmap && shape === heatmapShape) {
    heatmap.data.datasets[0].data = points;
    heatmap.$max = max;
    heatmap.update('none');
    return;
  }
  heatmap?.destroy();
  heatmapShape = shape;
  $('heatmap-box').style.height = `${Math.max(8, 2 + layers * 2.2)}rem`;
  heatmap = new Chart($('heatmap'), {
    type: 'matrix',
    data: {
      datasets: [
        {
          label: 'tokens',
          data: points,
          backgroundColor: (ctx) => {
            const v = ctx.raw?.v ?? 0;
            return `rgba(227, 116, 0, ${0.06 + (0.94 * v) / (ctx.chart.$max || 1)})`;
          },
          borderWidth: 0,
          width: ({ chart }) => (chart.chartArea?.width ?? 0) / experts - 1,
          height: ({ chart }) => (chart.chartArea?.height ?? 0) / layers - 1,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: () => '',
            label: (ctx) => `layer ${ctx.raw.y}, expert ${ctx.raw.x}: ${number(ctx.raw.v)} tokens`,
          },
        },
      },
      scales: {
        x: {
          type: 'linear',
          min: -0.5,
          max: experts - 0.5,
          offset: false,
          afterBuildTicks: integerTicks(experts),
          grid: { display: false },
          title: { display: true, text: 'expert' },
        },
        y: {
          type: 'linear',
          min: -0.5,
          max: layers - 0.5,
          reverse: true,
          offset: false,
          afterBuildTicks: integerTicks(layers),
          grid: { display: false },
          title: { display: true, text: 'layer' },
        },
      },
    },
  });
  heatmap.$max = max;
}

function drawWorkers(s) {
  const body = $('workers').tBodies[0];
  body.replaceChildren();
  const rows =
    s.workers.length > 0
      ? s.workers
      : [
          s.hasEngine
            ? { address: 'experts in this gateway’s process', up: true, inProcess: true }
            : { address: 'no engine here: a frontend only (requests go to other gateways)', up: true, inProcess: true },
        ];
  for (const w of rows) {
    const tr = document.createElement('tr');
    tr.className = 'worker';
    const health = document.createElement('td');
    health.className = w.up ? 'up' : 'down';
    health.textContent = w.up ? 'serving' : 'down';
    const cells = [
      w.address,
      null,
      w.inProcess ? 'all' : `${w.numExperts} (${w.numPrimary})`,
      w.inProcess ? '' : w.experts.map((e, layer) => `L${layer}: ${e.join(',')}`).join('  '),
    ];
    cells.forEach((text, i) => {
      if (i === 1) return tr.append(health);
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    });
    body.append(tr);
  }
  $('placement-revision').textContent = s.placementRevision > 0 ? `placement revision ${s.placementRevision}` : '';
}

function render(s) {
  $('model').textContent = s.model;
  $('subtitle').textContent =
    `gateway ${s.instance} · ${s.state} · request queue: ${s.queue} · updated ${new Date(s.timeMs).toLocaleTimeString()}`;
  $('running').textContent = number(s.running);
  $('waiting').textContent = number(s.waiting);
  $('kv').textContent = `${number(100 * s.kvUsage, 1)} %`;
  $('tps').textContent = number(s.tokensPerSecond, 1);
  $('params').textContent = si(s.activeParamsPerToken);
  $('flops').textContent = si(s.flopsPerToken);
  drawHeatmap(s.expertLoad);
  drawWorkers(s);
  const t = timeline.data;
  t.labels.push(new Date(s.timeMs).toLocaleTimeString());
  t.datasets[0].data.push(s.tokensPerSecond);
  t.datasets[1].data.push(s.running);
  t.datasets[2].data.push(s.waiting);
  if (t.labels.length > HISTORY) {
    t.labels.shift();
    for (const d of t.datasets) d.data.shift();
  }
  timeline.update('none');
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots ?? 0) + 1);
}

const source = new EventSource('/v1/switchyard/live');
source.addEventListener('snapshot', (event) => render(JSON.parse(event.data)));
source.addEventListener('error', () => {
  $('subtitle').textContent = 'connection lost: reconnecting…';
});

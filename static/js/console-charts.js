// The analytics console's charts: Chart.js (static/vendor/chartjs, loaded before this module)
// draws each <canvas data-chart> from the JSON the server wrote (json_script
// "console-chart-data"). Colours come from the stylesheet, so light and dark both read; values
// show on hover, and on focus with the arrow keys; each chart's table is in the page.

const source = document.getElementById("console-chart-data");
const data = source ? JSON.parse(source.textContent) : null;
const charts = new Map();

// The stylesheet's colours are light-dark() pairs: a probe element resolves each to the
// colour of the theme in force (the system's, or the one chosen with the toggle).
const probe = document.createElement("span");
probe.hidden = true;
document.body.append(probe);

function colour(name) {
  probe.style.color = `var(${name})`;
  return getComputedStyle(probe).color;
}

function palette() {
  return {
    text: colour("--muted"),
    grid: colour("--border"),
    series: [colour("--chart-1"), colour("--chart-2"), colour("--chart-3")],
    tooltipBg: colour("--surface"),
    tooltipFg: colour("--fg"),
  };
}

function formatter(unit) {
  switch (unit) {
    case "usd":
      return (v) => (v === null ? "—" : "$" + v.toLocaleString("en-US", {
        minimumFractionDigits: 2,
        maximumFractionDigits: Math.abs(v) < 1 ? 4 : 2,
      }));
    case "ms":
      return (v) => {
        if (v === null) return "—";
        if (v < 10) return Math.round(v * 10) / 10 + " ms";
        if (v < 1000) return Math.round(v) + " ms";
        return (v / 1000).toLocaleString("en-US", { maximumFractionDigits: 2 }) + " s";
      };
    case "percent":
      return (v) => (v === null ? "—" : v.toLocaleString("en-US", { maximumFractionDigits: 1 }) + "%");
    default:
      return (v) => (v === null ? "—" : v.toLocaleString("en-US"));
  }
}

function options(spec, colours) {
  const format = formatter(spec.unit);
  const narrow = window.matchMedia("(max-width: 40rem)").matches;
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: {
      legend: {
        display: spec.series.length > 1,
        labels: { color: colours.text, boxWidth: 12 },
      },
      tooltip: {
        backgroundColor: colours.tooltipBg,
        titleColor: colours.tooltipFg,
        bodyColor: colours.tooltipFg,
        borderColor: colours.grid,
        borderWidth: 1,
        callbacks: {
          title: (items) => (items.length ? data.titles[items[0].dataIndex] : ""),
          label: (item) => `${item.dataset.label}: ${format(item.raw)}`,
        },
      },
    },
    scales: {
      x: {
        stacked: spec.stacked,
        ticks: { color: colours.text, maxRotation: 0, autoSkip: true, maxTicksLimit: narrow ? 4 : 8 },
        grid: { display: false },
        border: { color: colours.grid },
      },
      y: {
        stacked: spec.stacked,
        beginAtZero: true,
        ticks: { color: colours.text, maxTicksLimit: 5, callback: (v) => format(v) },
        grid: { color: colours.grid },
        border: { color: colours.grid },
      },
    },
  };
}

function datasets(spec, colours) {
  return spec.series.map((series, index) => ({
    label: series.label,
    data: series.values,
    backgroundColor: colours.series[index],
    borderColor: colours.series[index],
    borderWidth: spec.kind === "line" ? 2 : 0,
    pointRadius: spec.kind === "line" ? 2 : 0,
    spanGaps: true,
  }));
}

// Arrow keys move the tooltip along the axis: the values are there without a mouse.
function keyboard(canvas) {
  let index = -1;
  const show = () => {
    const chart = charts.get(canvas.dataset.chart);
    const active = chart.data.datasets.map((_, datasetIndex) => ({ datasetIndex, index }));
    chart.setActiveElements(active);
    chart.tooltip.setActiveElements(active, { x: 0, y: 0 });
    chart.update();
  };
  canvas.addEventListener("keydown", (event) => {
    const last = data.labels.length - 1;
    if (event.key === "ArrowRight") index = Math.min(last, index + 1);
    else if (event.key === "ArrowLeft") index = Math.max(0, index < 0 ? last : index - 1);
    else if (event.key === "Home") index = 0;
    else if (event.key === "End") index = last;
    else return;
    event.preventDefault();
    show();
  });
  canvas.addEventListener("focus", () => {
    if (index < 0) index = data.labels.length - 1;
    show();
  });
  canvas.addEventListener("blur", () => {
    const chart = charts.get(canvas.dataset.chart);
    chart.setActiveElements([]);
    chart.tooltip.setActiveElements([], { x: 0, y: 0 });
    chart.update();
  });
}

function draw() {
  const colours = palette();
  for (const spec of data.charts) {
    const canvas = document.querySelector(`canvas[data-chart="${spec.id}"]`);
    if (!canvas) continue;
    charts.get(spec.id)?.destroy();
    const chart = new window.Chart(canvas, {
      type: spec.kind,
      data: { labels: data.labels, datasets: datasets(spec, colours) },
      options: options(spec, colours),
    });
    charts.set(spec.id, chart);
    canvas.dataset.drawn = "true";
  }
}

if (data && window.Chart) {
  draw();
  for (const canvas of document.querySelectorAll("canvas[data-drawn]")) keyboard(canvas);
  // Redraw with the other colours when the theme changes: the system's, or the toggle's.
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
  new MutationObserver(draw).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ["data-theme"],
  });
}

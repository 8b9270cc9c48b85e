// Drives headless Chromium over the served dbt docs site: opens the lineage
// graph, checks that it shows the migration's lineage, and screenshots it.
// Run by scripts/docs_check.sh, which installs playwright-core (pinned in
// scripts/docs_check/package-lock.json) and Debian's chromium, and serves the site.
//
// Usage: node scripts/docs_check.mjs <site url> <screenshot path>
// Environment: DOCS_CHECK_NODE_PREFIX (the npm prefix holding node_modules/playwright-core),
//              CHROMIUM (default /usr/bin/chromium).
// Exit 0 when every check passes; otherwise one line on stderr and exit 1.
//
// The graph is drawn on a canvas by cytoscape, so the checks read the graph that
// was actually rendered: the cytoscape instance that dbt-docs mounts in `#cy`
// (nodes present, not hidden, drawn inside the canvas, and connected), falling
// back to the elements of dbt-docs' angular `graph` service if cytoscape's
// registration is ever not reachable.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const [siteUrl, screenshotPath] = process.argv.slice(2);
if (!siteUrl || !screenshotPath) {
  console.error('usage: node scripts/docs_check.mjs <site url> <screenshot path>');
  process.exit(2);
}
const prefix = process.env.DOCS_CHECK_NODE_PREFIX;
if (!prefix) {
  console.error('docs-check: DOCS_CHECK_NODE_PREFIX is not set (run scripts/docs_check.sh)');
  process.exit(2);
}
const { chromium } = createRequire(join(resolve(prefix), 'package.json'))('playwright-core');

// Two chains, as the data really moves: the monolith -> the staged tables -> publish into
// the microservice's own tables; the microservice's tables -> the documents -> the index.
const model = (name) => `model.listings_migration.${name}`;
const CHAINS = [
  {
    source: 'source.listings_migration.monolith.unified_listings',
    exposure: 'exposure.listings_migration.microservice_tables',
    models: [
      'stg_monolith__unified_listings',
      'int_listings_validated',
      'int_listings_service_checked_even_ids',
      'int_listings_service_checked_odd_ids',
      'int_listings_service_checked',
      'listings',
      'listing_images',
      'listing_locations',
    ].map(model),
  },
  {
    source: 'source.listings_migration.microservice.listings',
    exposure: 'exposure.listings_migration.listings_microservice_index',
    models: ['stg_microservice__listings', 'listing_search_documents'].map(model),
  },
];
const REQUIRED = CHAINS.flatMap((chain) => [chain.source, ...chain.models, chain.exposure]);
const short = (id) => id.split('.').slice(2).join('.');

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Without these Chromium keeps trying to reach Google, and this closed
  // network refuses its connections.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TIMEOUT_MS = 30000;

class CheckFailed extends Error {}

// Runs in the page: what the rendered lineage graph holds.
function readGraph(required) {
  const container = document.querySelector('#cy');
  const cy = container && container._cyreg && container._cyreg.cy;
  const launcher = document.querySelector('.launcher');
  const open = Boolean(launcher && launcher.classList.contains('on') && container && container.offsetWidth > 0);
  if (cy) {
    const width = cy.width();
    const height = cy.height();
    const nodes = {};
    cy.nodes().forEach((node) => {
      const box = node.renderedBoundingBox();
      nodes[node.id()] = {
        visible: node.visible() && !Number(node.data('hidden')),
        drawn: box.w > 0 && box.h > 0 && box.x2 > 0 && box.y2 > 0 && box.x1 < width && box.y1 < height,
      };
    });
    const chains = required.map((chain) => {
      const source = cy.getElementById(chain.source);
      const exposure = cy.getElementById(chain.exposure);
      return {
        downstreamOfSource: source.nonempty() ? source.successors('node').map((n) => n.id()) : [],
        upstreamOfExposure: exposure.nonempty() ? exposure.predecessors('node').map((n) => n.id()) : [],
      };
    });
    return { via: 'cytoscape', open, nodeCount: cy.nodes().length, edgeCount: cy.edges().length, nodes, chains };
  }
  // Fallback: the element list that dbt-docs hands to cytoscape.
  const injector = window.angular && window.angular.element(document.body).injector();
  const elements = (injector && injector.get('graph').graph.elements) || [];
  const nodes = {};
  const edges = [];
  for (const element of elements) {
    if (element.data.source && element.data.target) edges.push(element.data);
    else nodes[element.data.unique_id] = { visible: !Number(element.data.hidden), drawn: open };
  }
  const walk = (start, from, to) => {
    const seen = new Set();
    const queue = [start];
    while (queue.length) {
      const id = queue.shift();
      for (const edge of edges) {
        if (edge[from] === id && !seen.has(edge[to])) {
          seen.add(edge[to]);
          queue.push(edge[to]);
        }
      }
    }
    return [...seen];
  };
  return {
    via: 'dbt-docs graph service',
    open,
    nodeCount: Object.keys(nodes).length,
    edgeCount: edges.length,
    nodes,
    chains: required.map((chain) => ({
      downstreamOfSource: walk(chain.source, 'source', 'target'),
      upstreamOfExposure: walk(chain.exposure, 'target', 'source'),
    })),
  };
}

function check(graph) {
  if (!graph.open) throw new CheckFailed('the lineage graph panel did not open');
  const missing = REQUIRED.filter((id) => !graph.nodes[id]);
  if (missing.length) throw new CheckFailed(`missing from the lineage graph: ${missing.map(short).join(', ')}`);
  const hidden = REQUIRED.filter((id) => !graph.nodes[id].visible || !graph.nodes[id].drawn);
  if (hidden.length) throw new CheckFailed(`in the lineage graph but not drawn: ${hidden.map(short).join(', ')}`);
  const cut = CHAINS.flatMap((chain, i) => {
    const down = new Set(graph.chains[i].downstreamOfSource);
    const up = new Set(graph.chains[i].upstreamOfExposure);
    return [
      ...[...chain.models, chain.exposure].filter((id) => !down.has(id)).map((id) => `${short(id)} not downstream of ${short(chain.source)}`),
      ...[chain.source, ...chain.models].filter((id) => !up.has(id)).map((id) => `${short(id)} not upstream of ${short(chain.exposure)}`),
    ];
  });
  if (cut.length) throw new CheckFailed(`lineage broken: ${cut.join('; ')}`);
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), 'docs-check-chromium-'));
  let context;
  const pageErrors = [];
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1600, height: 1000 },
      deviceScaleFactor: 2, // a screenshot whose node labels can be read
      timeout: TIMEOUT_MS,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on('pageerror', (error) => pageErrors.push(error.message));

    // The overview page with the lineage graph open (what the graph button does).
    await page.goto(new URL('#!/overview?g_v=1', siteUrl).href, { waitUntil: 'load' });
    try {
      await page.waitForFunction(
        () => {
          const container = document.querySelector('#cy');
          const cy = container && container._cyreg && container._cyreg.cy;
          return cy ? cy.nodes().length > 0 && container.offsetWidth > 0 : false;
        },
        null,
        { timeout: TIMEOUT_MS, polling: 250 },
      );
    } catch {
      // Not fatal by itself: readGraph falls back to the graph service.
    }
    // Let the layout settle: positions unchanged over two successive reads.
    let previous = '';
    for (let i = 0; i < 20; i += 1) {
      const positions = await page.evaluate(() => {
        const container = document.querySelector('#cy');
        const cy = container && container._cyreg && container._cyreg.cy;
        return cy ? JSON.stringify([cy.zoom(), cy.pan(), cy.nodes().map((n) => n.position())]) : '';
      });
      if (positions === previous) break;
      previous = positions;
      await page.waitForTimeout(250);
    }

    mkdirSync(dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath });

    const graph = await page.evaluate(readGraph, CHAINS.map(({ source, exposure }) => ({ source, exposure })));
    if (graph.nodeCount === 0) {
      const why = pageErrors.length ? ` (page error: ${pageErrors[0]})` : '';
      throw new CheckFailed(`the lineage graph has no nodes${why}`);
    }
    check(graph);
    console.log(
      `docs-check: OK: lineage graph (${graph.nodeCount} nodes, ${graph.edgeCount} edges, read via ${graph.via}) ` +
        `shows ${REQUIRED.map(short).join(', ')}, each chain connected source -> exposure; screenshot ${screenshotPath}`,
    );
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((error) => {
  const message = error instanceof CheckFailed ? error.message : String(error.message || error).split('\n')[0];
  console.error(`docs-check: FAIL: ${message}`);
  process.exit(1);
});

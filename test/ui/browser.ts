/// <reference lib="dom" />
/**
 * A real headless Chromium (Debian's package, driven by playwright-core) for the web UI's tests,
 * with a fresh profile per launch, and what the tests read from the drawn DAG.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));

export interface Browser {
  page: Page;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)`);
  const profile = await mkdtemp(join(tmpdir(), 'memoflow-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    page,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/**
 * Each drawn node: its id, shade and the fill Chromium renders its box with (`rgb(r, g, b)`).
 * One evaluation that queries and reads (not `$$eval`, which finds the elements first): the page
 * may redraw the graph in between, and a detached box has no computed fill.
 */
export function drawnNodes(page: Page): Promise<{ id: string; shade: string; fill: string }[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('#graph g.node')).map((group) => ({
      id: group.getAttribute('data-node-id') ?? '',
      shade: group.getAttribute('data-shade') ?? '',
      fill: getComputedStyle(group.querySelector('rect.box') as Element).fill,
    })),
  );
}

/** `#4caf50` -> `rgb(76, 175, 80)`, as getComputedStyle reports a fill. */
export function rgb(hex: string): string {
  const [r, g, b] = [1, 3, 5].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
  return `rgb(${r}, ${g}, ${b})`;
}

/** The node's group, by attribute value: for the ids memoflow allows (letters, digits, `_`, `-`, `.`), which need no CSS escaping. */
export function nodeSelector(id: string): string {
  return `#graph g.node[data-node-id=${JSON.stringify(id)}]`;
}

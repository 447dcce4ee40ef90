import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO } from './dist.js';

/** Debian's chromium (scripts/setup.sh): the tests drive the system browser, never a downloaded build. */
export const CHROMIUM = '/usr/bin/chromium';

/** Where browser tests keep their screenshots (gitignored): test-results/<suite>/<name>.png. */
export function artifactDir(suite: string): string {
  const dir = path.join(REPO, 'test-results', suite);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** A phone's screen: 390 × 844 CSS pixels (an iPhone 12-sized viewport) at 2× (3× only makes screenshots slower), touch, mobile layout. */
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } as const;
export const DESKTOP = { viewport: { width: 1280, height: 900 } } as const;

/**
 * Real headless Chromium for end-to-end dashboard tests. Each context is a separate cookie jar (a
 * separate logged-in user); pages of a context record their console errors, which a test can assert
 * are none.
 */
export class TestBrowser {
  private constructor(readonly browser: Browser, private readonly shots: string) {}

  static async launch(suite: string): Promise<TestBrowser> {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    return new TestBrowser(browser, artifactDir(suite));
  }

  context(opts: typeof PHONE | typeof DESKTOP, baseURL: string): Promise<BrowserContext> {
    return this.browser.newContext({ ...opts, baseURL });
  }

  /** Saves a full-page screenshot as test-results/<suite>/<name>.png and returns its path. */
  async screenshot(page: Page, name: string): Promise<string> {
    const file = path.join(this.shots, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}

/**
 * Collects a page's console errors and uncaught exceptions (a broken page often shows only there). A 401
 * answer is expected before login (Chromium logs every failed load) and is left out.
 */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('status of 401')) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** Whether the page scrolls sideways: its content is wider than the viewport. */
export async function hasHorizontalScroll(page: Page): Promise<boolean> {
  // A string: the test tsconfig has no DOM types, and this runs in the page, not in Node.
  return (await page.evaluate('document.documentElement.scrollWidth > document.documentElement.clientWidth')) as boolean;
}

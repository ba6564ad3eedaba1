import './console.css';
import { apiKey } from './api.ts';
import { errorBox } from './dom.ts';
import { generatePage, jobPage } from './pages/generate.ts';
import { personaPage } from './pages/persona.ts';
import { populationPage } from './pages/population.ts';
import { searchPage } from './pages/search.ts';
import type { View } from './view.ts';

/**
 * A hash router over four pages; each draw gets a fresh AbortController, so leaving a page cancels its
 * requests and stops a job page's polling.
 */
type Page = (view: View, match: RegExpMatchArray, params: URLSearchParams) => Promise<void> | void;

const pages: [RegExp, string, Page][] = [
  [/^\/search$/, 'search', (v, _m, q) => searchPage(v, q)],
  [/^\/persona\/([0-9a-f]{32})$/, 'search', (v, m, q) => personaPage(v, m[1] ?? '', q)],
  [/^\/population$/, 'population', (v) => populationPage(v)],
  [/^\/generate$/, 'generate', (v) => generatePage(v)],
  [/^\/jobs\/([0-9a-f-]{36})$/, 'generate', (v, m) => jobPage(v, m[1] ?? '')],
];

let current: AbortController | undefined;

function render(): void {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const root = document.getElementById('view');
  if (!root) return;
  root.replaceChildren();
  const [path = '', search = ''] = location.hash.replace(/^#/, '').split('?');
  const found = pages.map(([re, nav, page]) => ({ m: path.match(re), nav, page })).find((p) => p.m);
  if (!found?.m) {
    location.replace('#/search');
    return;
  }
  for (const a of document.querySelectorAll<HTMLElement>('[data-nav]')) a.classList.toggle('active', a.dataset.nav === found.nav);
  const view: View = { root, signal: controller.signal, rerender: render };
  Promise.resolve(found.page(view, found.m, new URLSearchParams(search))).catch((error: unknown) => {
    if (!controller.signal.aborted) root.append(errorBox(error));
  });
}

function keyForm(): void {
  const form = document.getElementById('key-form');
  const input = document.getElementById('api-key');
  const state = document.getElementById('key-state');
  if (!(form instanceof HTMLFormElement) || !(input instanceof HTMLInputElement) || !state) return;
  const show = () => { state.textContent = apiKey.get() ? 'key set' : 'no key'; };
  show();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (input.value.trim() === '') return;
    apiKey.set(input.value.trim());
    input.value = '';
    show();
    render();
  });
}

keyForm();
window.addEventListener('hashchange', render);
render();

// Parse Mermaid sources with mermaid's own parser.
// stdin: a JSON array of diagram sources; stdout: a JSON array of {ok, type, error}.
// mermaid sanitises labels with DOMPurify, which needs a DOM: jsdom provides one in node.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const source of JSON.parse(input)) {
  try {
    const parsed = await mermaid.parse(source);
    results.push({ ok: true, type: parsed.diagramType, error: null });
  } catch (err) {
    results.push({ ok: false, type: null, error: String(err && err.message ? err.message : err) });
  }
}
process.stdout.write(JSON.stringify(results));

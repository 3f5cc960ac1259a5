// tsc compiles the TypeScript only: the Lua scripts the cache runs are copied next to their loader in
// dist/, after the copies of scripts that no longer exist are removed (so a renamed script is not packed twice).
import { cpSync, readdirSync, rmSync } from 'node:fs';

const target = new URL('../dist/scripts/', import.meta.url);
for (const entry of readdirSync(target, { recursive: true, withFileTypes: true })) {
  if (entry.isFile() && entry.name.endsWith('.lua')) rmSync(new URL(entry.name, `file://${entry.parentPath}/`));
}
cpSync(new URL('../src/scripts', import.meta.url), target, {
  recursive: true,
  filter: (source) => !/\.[cm]?ts$/.test(source),
});

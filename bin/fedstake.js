#!/usr/bin/env node
// package.json "bin": in a clone, the TypeScript CLI itself (Node strips its types); in an installed
// package (under node_modules, where Node strips no types, and the sources are not shipped) the
// JavaScript that `npm run build:lib` compiled into dist/.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = new URL("../scripts/fedstake.ts", import.meta.url);
const installed = fileURLToPath(import.meta.url).split(/[\\/]/).includes("node_modules");
await import(!installed && existsSync(source) ? source.href : new URL("../dist/scripts/fedstake.js", import.meta.url).href);

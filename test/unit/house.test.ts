// The house's sizes (docs/architecture.md): a file in src/ holds at most 400
// lines, a function at most 80, so that each can be read at one sitting.
// Functions (and a class's static blocks) are found with the TypeScript
// compiler's own parser, nested ones too; a function's lines run from its
// first token to its closing brace, as written. Tables are not functions: a
// long literal (a const table, a field's initial value) is not held to 80.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { root, tsFiles } from '../helpers/source-tree.js';

const MAX_FILE = 400, MAX_FUNCTION = 80;

const tooLong: string[] = [];
const tooLarge: string[] = [];
let functions = 0;
for (const f of tsFiles()) {
  const text = readFileSync(f, 'utf8');
  const rel = relative(root, f);
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > MAX_FILE) tooLarge.push(`${rel}: ${lines} lines`);
  const sf = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, true);
  const visit = (node: ts.Node): void => {
    const isFunction = ts.isFunctionLike(node) && 'body' in node && node.body !== undefined;
    if (isFunction || ts.isClassStaticBlockDeclaration(node)) {
      functions++;
      const from = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const to = sf.getLineAndCharacterOfPosition(node.end).line;
      const name = isFunction ? (node as ts.FunctionLikeDeclaration).name?.getText(sf) ?? '(anonymous)' : 'static { }';
      if (to - from + 1 > MAX_FUNCTION) tooLong.push(`${rel}:${from + 1} ${name}: ${to - from + 1} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

t.test(`no file in src/ over ${MAX_FILE} lines`, async (t) => {
  t.same(tooLarge, []);
});

t.test(`no function in src/ over ${MAX_FUNCTION} lines`, async (t) => {
  t.ok(functions > 500, `the parser found the functions (${functions})`);
  t.same(tooLong, []);
});

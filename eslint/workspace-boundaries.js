// @ts-check
/**
 * ESLint rule `switchyard/workspace-boundaries`: a file may import another workspace only through its
 * package name and declared entries (`@switchyard/engine`, `@switchyard/rpc/internal`), never by a
 * relative path into its folder or into its `src/`; and nothing imports a service (`services/*` are
 * processes, started by path, never imported). Relative imports inside one workspace are free.
 */
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SERVICES = new Set(['gateway', 'expert-worker', 'cli']);

/** `packages/engine`, `services/gateway`, or `.` for the root's bench/ and test/ folders. */
function workspaceOf(file) {
  const parts = relative(ROOT, file).split(sep);
  return (parts[0] === 'packages' || parts[0] === 'services') && parts.length > 2 ? `${parts[0]}/${parts[1]}` : '.';
}

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'workspaces are entered through their package entry points; services are never imported' },
    schema: [],
    messages: {
      relative: "'{{spec}}' reaches into {{target}}: import its package ({{pkg}}) instead",
      deep: "'{{spec}}' reaches into a package's src/: import the package's entry point",
      service: "'{{spec}}' imports a service; services are processes, never imported",
    },
  },
  create(context) {
    const file = context.filename;
    const own = workspaceOf(file);
    const check = (node) => {
      const source = node.source;
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
      const spec = source.value;
      if (spec.startsWith('@switchyard/')) {
        const [, name = '', ...rest] = spec.split('/');
        if (SERVICES.has(name) && own !== `services/${name}`)
          context.report({ node: source, messageId: 'service', data: { spec } });
        else if (rest[0] === 'src') context.report({ node: source, messageId: 'deep', data: { spec } });
        return;
      }
      if (!spec.startsWith('.')) return;
      const target = workspaceOf(resolve(dirname(file), spec));
      if (target === own) return;
      if (target.startsWith('services/')) context.report({ node: source, messageId: 'service', data: { spec } });
      else if (target !== '.')
        context.report({
          node: source,
          messageId: 'relative',
          data: { spec, target, pkg: `@switchyard/${target.split('/')[1]}` },
        });
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default { rules: { 'workspace-boundaries': rule } };

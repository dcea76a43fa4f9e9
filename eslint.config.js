// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import switchyard from './eslint/workspace-boundaries.js';

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'models/**', 'bench/out/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { switchyard },
    rules: {
      'switchyard/workspace-boundaries': 'error',
      // One way in: each index lists its exports by name.
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'list exports by name (no `export *`)' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The live page's script runs in the browser, next to Chart.js (loaded by page.html).
    files: ['services/gateway/src/live/*.js'],
    languageOptions: {
      globals: { window: 'readonly', document: 'readonly', EventSource: 'readonly', Chart: 'readonly' },
    },
  },
);

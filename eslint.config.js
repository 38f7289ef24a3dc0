// The style that holds by itself (`npm test` runs this): typescript-eslint's strict, type-aware rules over
// the product (src/), its recommended rules over tests, benches and scripts, where fixtures read JSON bodies
// as `any` and assert non-null on purpose.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'test/.runs/', 'bench/.results/', '.build-test-*/'] },
  js.configs.recommended,
  {
    files: ['src/**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `return res.end()` / `return sendError(...)` as an early exit from a void handler is this codebase's idiom.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // express-session's callbacks (destroy, regenerate, save) hand their errors over typed any; they are passed on as they came.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true }],
    },
  },
  {
    // Loops over Node's flat name/value lists (rawHeaders, undici's header buffers) and other index loops bounded
    // by `length`, on the per-request paths: noUncheckedIndexedAccess types every `list[i]` as possibly undefined,
    // and a check there would add a branch per header to the benchmarked paths for a case that cannot happen.
    files: [
      'src/gateway/*.ts',
      'src/auth/credentials.ts',
      'src/http/client-ip.ts',
      'src/http/forward-exchange.ts',
      'src/http/raw-response.ts',
      'src/http/server.ts',
      'src/management/management-worker.ts',
      'src/management/worker.ts',
    ],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // Migrations are written against Kysely<any>: they describe the schema as it was, not as the types say it is now.
    files: ['src/db/migrations/*.ts', 'src/**/migrations/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'demo/**/*.ts'],
    extends: [...tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  { files: ['src/**/static/*.js'], languageOptions: { globals: globals.browser } },
  { files: ['**/*.{js,mjs,cjs}'], ignores: ['src/**/static/*.js'], languageOptions: { globals: globals.node } },
);

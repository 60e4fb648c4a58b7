// Lint: typescript-eslint's type-aware recommended rules over src/, test/ and bench/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/', 'node_modules/', 'results/', 'scripts/', '.facepipe/', '.software-adapter/', 'eslint.config.js'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Long functions hide their steps; the few that must be long (hand-written kernels) say why in place.
      'max-lines-per-function': ['error', { max: 100, skipBlankLines: true, skipComments: true }],
      // Shapes and lists in messages print as "1,2,3", which is what the messages mean.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowArray: true, allowNullish: true },
      ],
    },
  },
  {
    // Tests read JSON that the CLI printed: typing every parsed record would only restate the assertions.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
  {
    // TensorFlow.js ops return wide tensor types and infer their generic parameters from an assertion's
    // context; this rule reads those assertions as unnecessary and removing them breaks the types.
    files: ['src/ml/**', 'test/ml/**', 'bench/**', 'src/stages/**'],
    rules: { '@typescript-eslint/no-unnecessary-type-assertion': 'off' },
  },
);

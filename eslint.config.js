// Style: neostandard (the `standard` style this code already follows), with its TypeScript rules.
// The import direction between layers is checked by dependency-cruiser (.dependency-cruiser.cjs).
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'web/dist/**', 'bench/out/**', 'node_modules/**', '.cache/**', 'models/**', 'tools/__pycache__/**', 'test/fixtures/**']
  }),
  {
    rules: {
      // `void promise` is how this code marks a promise it starts on purpose and does not await
      // (the form typescript-eslint's no-floating-promises asks for); only as a statement
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]

/**
 * The import direction between the layers of src/ (README, "Layout"): a request goes
 * http → services → ports ← adapters, and only src/main wires adapters in. `npm test` runs
 * this (`npm run lint:imports`); test/main/import-rules.test.ts plants violations to prove each
 * rule can fail.
 */
const LAYERS_ABOVE_CORE = '^src/(ml|backends|services|jobs|http|main)/'
const ADAPTERS = '^src/backends/(sqlite|postgres)/'

module.exports = {
  forbidden: [
    {
      name: 'core-is-the-bottom',
      comment: 'src/core holds types, limits, errors and pure functions: it imports nothing above it',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: LAYERS_ABOVE_CORE }
    },
    {
      name: 'ml-imports-only-core',
      comment: 'the encoders know nothing of storage, jobs, use cases or HTTP',
      severity: 'error',
      from: { path: '^src/ml/' },
      to: { path: '^src/(backends|services|jobs|http|main)/' }
    },
    {
      name: 'backends-never-reach-up',
      comment: 'ports and adapters never import services, jobs, HTTP or the wiring',
      severity: 'error',
      from: { path: '^src/backends/' },
      to: { path: '^src/(services|jobs|http|main)/' }
    },
    {
      name: 'adapters-are-siblings',
      comment: 'the embedded engine and the PostgreSQL adapter never import each other',
      severity: 'error',
      from: { path: '^src/backends/(sqlite|postgres)/' },
      to: { path: ADAPTERS, pathNot: '^src/backends/$1/' }
    },
    {
      name: 'use-cases-see-only-ports',
      comment: 'services and jobs talk to backends through src/backends/*.ts (the ports), never an adapter, and never to HTTP or the wiring',
      severity: 'error',
      from: { path: '^src/(services|jobs)/' },
      to: { path: ['^src/http/', '^src/main/', ADAPTERS] }
    },
    {
      name: 'only-main-wires-adapters',
      comment: 'src/main decides the backend and constructs adapters; nothing else imports one',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/main/', ADAPTERS] },
      to: { path: ADAPTERS }
    },
    {
      name: 'http-does-not-import-the-process',
      comment: 'the app is built by src/main and given what it needs; it never imports main',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/main/' }
    },
    {
      name: 'src-stands-alone',
      comment: 'production code never imports tests, benchmarks, tools or scripts',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|tools|scripts|web)/' }
    },
    {
      name: 'bench-does-not-import-tests',
      comment: 'shared helpers live in scripts/lib, not test/',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' }
    },
    {
      name: 'no-cycles-in-src',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|web/dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  }
}

// Jest in native ESM mode (Nest 12 is ESM-only; see ../shared/TOOLCHAIN.md), TypeScript through @swc/jest.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'es6' },
  },
];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  testEnvironment: 'node',
  // package.json "imports" (#config, ...) point at the compiled libs; tests run the sources.
  moduleNameMapper: { '^#(config|common|proto|api-client)$': '<rootDir>/libs/$1/src/index.ts' },
};

export default {
  testTimeout: 30_000,
  // Every temporary folder of a run in one, removed however the run ends (test/support/temp-root.mjs).
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};

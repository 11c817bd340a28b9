import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` appends a migration to drizzle/ after a change to src/schema.ts.
// Generation needs no database; migrations are applied by src/migrate.ts.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
});

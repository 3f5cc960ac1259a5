import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The CDC payload also carries the row's version, so that the eviction can raise the cache's
 * version floor: a write-through of an older version arriving late can then never land. And
 * every UPDATE bumps the version, also one made outside the app that leaves it alone, so that
 * versions order every change.
 */
export class UsersNotifyVersion1764115500000 implements MigrationInterface {
  name = 'UsersNotifyVersion1764115500000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(this.notifyFunction(true));
    await queryRunner.query(`
      CREATE FUNCTION users_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.version = OLD.version THEN
          NEW.version := OLD.version + 1;
        END IF;
        RETURN NEW;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER users_bump_version BEFORE UPDATE ON users
      FOR EACH ROW EXECUTE FUNCTION users_bump_version()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TRIGGER users_bump_version ON users');
    await queryRunner.query('DROP FUNCTION users_bump_version()');
    await queryRunner.query(this.notifyFunction(false));
  }

  private notifyFunction(withVersion: boolean): string {
    const version = withVersion ? `'version', CASE WHEN TG_OP = 'DELETE' THEN OLD.version ELSE NEW.version END,` : '';
    return `
      CREATE OR REPLACE FUNCTION users_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('cache_invalidation', json_build_object(
          'table', TG_TABLE_NAME,
          'op', TG_OP,
          'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
          ${version}
          'ts', extract(epoch FROM clock_timestamp())
        )::text);
        RETURN NULL;
      END
      $$`;
  }
}

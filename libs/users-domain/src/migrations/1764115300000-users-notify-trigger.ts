import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * CDC: every committed change of a user sends `{table, op, id, ts}` on the `cache_invalidation`
 * channel. Ids only: a NOTIFY payload is limited to 8000 bytes, and the cache reloads from the table.
 */
export class UsersNotifyTrigger1764115300000 implements MigrationInterface {
  name = 'UsersNotifyTrigger1764115300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION users_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('cache_invalidation', json_build_object(
          'table', TG_TABLE_NAME,
          'op', TG_OP,
          'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
          'ts', extract(epoch FROM clock_timestamp())
        )::text);
        RETURN NULL;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER users_notify_change
      AFTER INSERT OR UPDATE OR DELETE ON users
      FOR EACH ROW EXECUTE FUNCTION users_notify_change()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TRIGGER users_notify_change ON users');
    await queryRunner.query('DROP FUNCTION users_notify_change()');
  }
}

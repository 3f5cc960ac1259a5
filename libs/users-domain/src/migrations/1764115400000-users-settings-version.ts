import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The version of the last settings write persisted: write-behind jobs only ever move it forward. */
export class UsersSettingsVersion1764115400000 implements MigrationInterface {
  name = 'UsersSettingsVersion1764115400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users ADD COLUMN settings_version bigint NOT NULL DEFAULT 0');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users DROP COLUMN settings_version');
  }
}

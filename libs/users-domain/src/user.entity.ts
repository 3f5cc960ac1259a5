import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn, VersionColumn } from 'typeorm';

export type UserSettings = Record<string, unknown>;

@Entity({ name: 'users' })
export class User {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'ALWAYS' })
  id!: number;

  /** stored lower-cased, unique */
  @Column({ type: 'varchar', length: 254, unique: true })
  email!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'jsonb', default: () => `'{}'::jsonb` })
  settings!: UserSettings;

  /** bumped by every write: what write-through and write-behind order by */
  @VersionColumn()
  version!: number;

  /** version of the last persisted write-behind settings write; internal, never selected by default */
  @Column({
    name: 'settings_version',
    type: 'bigint',
    default: 0,
    select: false,
    transformer: { to: (v: number) => v, from: (v: string) => Number(v) },
  })
  settingsVersion!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

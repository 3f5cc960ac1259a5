export interface UserRecord {
  id: number;
  email: string;
  name: string;
  settings: { theme: string };
  version: number;
  createdAt: Date;
}

export function userRecord(id?: number): UserRecord;
export function userBody(id: number, users: number): UserRecord | UserRecord[];

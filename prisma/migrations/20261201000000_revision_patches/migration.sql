-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Revision" (
    "number" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "author" TEXT NOT NULL,
    "message" TEXT,
    "config" TEXT,
    "patch" TEXT,
    "diff" TEXT NOT NULL,
    "rollbackOf" INTEGER
);
INSERT INTO "new_Revision" ("author", "config", "createdAt", "diff", "message", "number", "rollbackOf") SELECT "author", "config", "createdAt", "diff", "message", "number", "rollbackOf" FROM "Revision";
DROP TABLE "Revision";
ALTER TABLE "new_Revision" RENAME TO "Revision";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- AlterTable
ALTER TABLE "Revision" ALTER COLUMN "config" DROP NOT NULL,
ADD COLUMN     "patch" TEXT;

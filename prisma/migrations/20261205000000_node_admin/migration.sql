-- AlterTable
ALTER TABLE "Node" ADD COLUMN "adminId" TEXT;
ALTER TABLE "Node" ADD COLUMN "report" TEXT;

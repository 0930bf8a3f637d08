-- AlterTable
ALTER TABLE "Node" ADD COLUMN     "adminId" TEXT,
ADD COLUMN     "report" TEXT;

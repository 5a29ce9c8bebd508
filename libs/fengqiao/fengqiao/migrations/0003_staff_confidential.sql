-- Staff approved by their leader to handle confidential tip-offs (举报人保密).
ALTER TABLE staff ADD COLUMN confidential_handler boolean NOT NULL DEFAULT false;
